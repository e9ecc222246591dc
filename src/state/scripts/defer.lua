-- Hands a claimed command back to wait for the provider's working hours: a worker's
-- write like transition.lua to 'received', except that the claim does not count as an
-- attempt (a payout held over a weekend must not spend its retries).
-- KEYS[1]: the record. ARGV: owner token, fence, outcome JSON.
-- Returns {verdict, state before}.
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then return {'missing', ''} end
if is_terminal(st) then return {'terminal', st} end
if redis.call('HGET', rec, 'own') ~= ARGV[1] or redis.call('HGET', rec, 'fence') ~= ARGV[2] then
  return {'fenced', st}
end
redis.call('HSET', rec, 'st', 'received', 'out', ARGV[3], 'upd', now)
redis.call('HDEL', rec, 'own', 'lease')
redis.call('HINCRBY', rec, 'att', -1)
return {'ok', st}
