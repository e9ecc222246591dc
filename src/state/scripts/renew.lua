-- Extends a worker's lease during a long provider call.
-- KEYS[1]: the record. ARGV: owner token, fence, lease ms. Returns 1 if still owned.
local rec = KEYS[1]
if redis.call('HGET', rec, 'st') ~= 'submitting'
  or redis.call('HGET', rec, 'own') ~= ARGV[1]
  or redis.call('HGET', rec, 'fence') ~= ARGV[2] then
  return 0
end
redis.call('HSET', rec, 'lease', now + tonumber(ARGV[3]))
return 1
