-- A worker's write, allowed only while it still holds the lease it claimed.
-- KEYS[1]: the record. ARGV: owner token, fence, new state, outcome JSON ('' keeps it).
-- Returns {verdict, state before}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then return {'missing', ''} end
if st == 'succeeded' or st == 'declined' or st == 'failed' or st == 'rejected' then
  return {'terminal', st}
end
if redis.call('HGET', rec, 'own') ~= ARGV[1] or redis.call('HGET', rec, 'fence') ~= ARGV[2] then
  return {'fenced', st}
end
redis.call('HSET', rec, 'st', ARGV[3], 'upd', now)
if ARGV[4] ~= '' then redis.call('HSET', rec, 'out', ARGV[4]) end
if ARGV[3] ~= 'submitting' then redis.call('HDEL', rec, 'own', 'lease') end
return {'ok', st}
