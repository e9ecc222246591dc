-- Extends a worker's lease during a long provider call, or before a recovery sends the
-- command again. KEYS[1]: the record. ARGV: owner token, fence, lease ms, '1' when about
-- to send (the time of the last request, 'sent', is now). Returns 1 if still owned, 0
-- if another worker took it, -1 if the record is gone (Redis lost it): nobody owns it,
-- and the command must come back rather than be dropped as another's.
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then return -1 end
if st ~= 'submitting'
  or redis.call('HGET', rec, 'own') ~= ARGV[1]
  or redis.call('HGET', rec, 'fence') ~= ARGV[2] then
  return 0
end
redis.call('HSET', rec, 'lease', now + tonumber(ARGV[3]))
if ARGV[4] == '1' then redis.call('HSET', rec, 'sent', now) end
return 1
