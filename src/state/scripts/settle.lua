-- Applies an outcome reported by the provider (callback or status query). The provider
-- is the authority, so this needs no lease; settling clears the lease, which fences out
-- any worker still in the middle of a call.
-- The last ARGV is always the record's retention in ms.
-- KEYS[1]: the record. ARGV: new state, outcome JSON, meta JSON (used only when the
-- record is missing), provider payment id.
-- Returns {verdict, state before, meta JSON, published flag for the new state}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = KEYS[1]
local to = ARGV[1]
local st = redis.call('HGET', rec, 'st')
if not st then
  redis.call('HSET', rec, 'st', to, 'fp', '', 'out', ARGV[2], 'meta', ARGV[3], 'pid', ARGV[4],
    'fence', 1, 'att', 0, 'created', now, 'upd', now)
  redis.call('PEXPIRE', rec, tonumber(ARGV[#ARGV]))
  return {'applied', '', ARGV[3], 0}
end
local meta = redis.call('HGET', rec, 'meta') or ''
if st == 'succeeded' or st == 'declined' or st == 'failed' or st == 'rejected' or st == to then
  return {'duplicate', st, meta, redis.call('HEXISTS', rec, 'ev:' .. st)}
end
redis.call('HSET', rec, 'st', to, 'out', ARGV[2], 'upd', now)
if to == 'succeeded' or to == 'declined' or to == 'failed' then
  redis.call('HDEL', rec, 'own', 'lease')
end
return {'applied', st, meta, 0}
