-- A leadership lease (e.g. the reconciler's): taken when free, kept by its owner.
-- KEYS[1]: the lock. ARGV: owner, ttl ms. Returns 1 while ARGV[1] holds it.
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
