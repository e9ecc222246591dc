-- GCRA with reservations: one round trip, Redis server time, one key (one hash slot).
-- KEYS[1]: the limiter's hash {tat, dtat}.
-- ARGV: emission interval µs (1 s / rate), burst (requests that may go at once),
--       longest wait µs a caller will sleep for its slot.
-- Returns {1, wait µs}: a slot is reserved `wait` from now; send then.
--         {0, delay µs}: no slot within the longest wait: come back after `delay`, by
--         when a slot should be free. Deferred callers are spread one interval apart
--         ('dtat'), so a backlog returns at the rate it can be served, not as a herd.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if tat < now then tat = now end
-- The earliest moment the bucket holds a token for this request.
local at = tat - (burst - 1) * interval
if at < now then at = now end
local ttl_ms
local result
if at - now <= max_wait then
  tat = tat + interval
  redis.call('HSET', KEYS[1], 'tat', string.format('%d', tat))
  ttl_ms = math.ceil((tat - now) / 1000)
  result = {1, at - now}
else
  local dtat = tonumber(redis.call('HGET', KEYS[1], 'dtat') or '0')
  if dtat < at then dtat = at end
  redis.call('HSET', KEYS[1], 'dtat', string.format('%d', dtat + interval))
  ttl_ms = math.ceil((dtat + interval - now) / 1000)
  -- Back in time to reserve its slot with a wait no longer than max_wait.
  result = {0, dtat - max_wait - now}
end
redis.call('PEXPIRE', KEYS[1], ttl_ms + 1000)
return result
