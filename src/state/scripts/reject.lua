-- Records an invalid command as rejected, unless its key already names another payment.
-- The last ARGV is always the record's retention in ms.
-- KEYS[1]: the record. ARGV: fingerprint, meta JSON, outcome JSON.
-- Returns {verdict, state, published flag}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then
  redis.call('HSET', rec, 'st', 'rejected', 'fp', ARGV[1], 'meta', ARGV[2], 'out', ARGV[3],
    'fence', 0, 'att', 0, 'created', now, 'upd', now)
  redis.call('PEXPIRE', rec, tonumber(ARGV[#ARGV]))
  return {'applied', 'rejected', 0}
end
if redis.call('HGET', rec, 'fp') ~= ARGV[1] then
  return {'conflict', st, 0}
end
return {'duplicate', st, redis.call('HEXISTS', rec, 'ev:' .. st)}
