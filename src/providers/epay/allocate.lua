-- Allocates an epay invoice id for an idempotency key, once: every retry of the key gets
-- the same id (its secret_hash is derived from the id, not stored). All keys are in the
-- terminal's hash slot.
-- KEYS[1]: the key's entry (hash: inv)
-- KEYS[2]: recent invoices (zset by time)    KEYS[3]: invoice -> key, suffix -> invoice (hash)
-- ARGV: idempotency key, retention ms, the id a parked copy of the command carries (or
-- ''), then the key's candidate ids (derived from the key, in order).
-- Returns the invoice id.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local got = redis.call('HGET', KEYS[1], 'inv')
if got then
  return got
end
local retention = tonumber(ARGV[2])
-- Forget invoices older than the retention window (a bounded batch per call).
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - retention, 'LIMIT', 0, 100)
for _, inv in ipairs(old) do
  redis.call('HDEL', KEYS[3], 'i:' .. inv, 's:' .. string.sub(inv, -6))
  redis.call('ZREM', KEYS[2], inv)
end
local function take(inv)
  redis.call('HSET', KEYS[3], 'i:' .. inv, ARGV[1])
  redis.call('HSETNX', KEYS[3], 's:' .. string.sub(inv, -6), inv)
  redis.call('ZADD', KEYS[2], now, inv)
  redis.call('HSET', KEYS[1], 'inv', inv)
  -- Everything lives as long as the newest order needs it, and no longer.
  for k = 1, 3 do
    redis.call('PEXPIRE', KEYS[k], retention)
  end
  return inv
end
-- The id a parked copy carries is the one the key had before Redis lost it (it is
-- taken only if it is one of the key's own candidates): epay knows it, whoever holds
-- its suffix here now.
local carried = ARGV[3]
if carried ~= '' then
  for i = 4, #ARGV do
    if ARGV[i] == carried then
      return take(carried)
    end
  end
end
-- The first candidate whose last six digits no recent order holds. After Redis lost
-- its data that is again the first one tried before, unless a recent order held it
-- then: so the carried id above.
for i = 4, #ARGV do
  local inv = ARGV[i]
  if redis.call('HEXISTS', KEYS[3], 's:' .. string.sub(inv, -6)) == 0 then
    return take(inv)
  end
end
return redis.error_reply('no free invoice suffix among recent orders')
