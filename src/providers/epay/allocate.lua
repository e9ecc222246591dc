-- Allocates an epay invoice id for an idempotency key, once: every retry of the key gets
-- the same id and the same secret_hash. All keys are in the terminal's hash slot.
-- KEYS[1]: the key's entry (hash: inv, sh)   KEYS[2]: the terminal's counter
-- KEYS[3]: recent invoices (zset by time)    KEYS[4]: invoice -> key, suffix -> invoice (hash)
-- ARGV: idempotency key, fresh secret_hash, retention ms.
-- Returns {invoice, secret_hash}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local got = redis.call('HMGET', KEYS[1], 'inv', 'sh')
if got[1] then
  return {got[1], got[2]}
end
local retention = tonumber(ARGV[3])
-- Forget invoices older than the retention window (a bounded batch per call).
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - retention, 'LIMIT', 0, 100)
for _, inv in ipairs(old) do
  redis.call('HDEL', KEYS[4], 'i:' .. inv, 's:' .. string.sub(inv, -6))
  redis.call('ZREM', KEYS[3], inv)
end
-- A counter that starts at the clock (13 digits), so a counter lost with Redis restarts
-- above every id it gave before; the last six digits repeat only after a million ids,
-- and the suffix index skips any that a recent order still holds.
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], now)
end
for _ = 1, 1000 do
  local inv = tostring(redis.call('INCR', KEYS[2]))
  local suffix = string.sub(inv, -6)
  if redis.call('HEXISTS', KEYS[4], 's:' .. suffix) == 0 then
    redis.call('HSET', KEYS[4], 'i:' .. inv, ARGV[1], 's:' .. suffix, inv)
    redis.call('ZADD', KEYS[3], now, inv)
    redis.call('HSET', KEYS[1], 'inv', inv, 'sh', ARGV[2])
    -- Everything lives as long as the newest order needs it, and no longer.
    for i = 1, 4 do
      redis.call('PEXPIRE', KEYS[i], retention)
    end
    return {inv, ARGV[2]}
  end
end
return redis.error_reply('no free invoice suffix among recent orders')
