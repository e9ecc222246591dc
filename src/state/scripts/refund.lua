-- The refund command that owns a purchase's refund: the first to ask, or one taking
-- over from an owner that refunded nothing.
-- KEYS[1]: the purchase's refund owner. ARGV: this command's key, the owner it may take
-- over from ('' for none), retention ms.
-- Returns the owner after the call.
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return owner end
if not owner or owner == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[3]))
  return ARGV[1]
end
return owner
