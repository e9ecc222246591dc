-- GCRA with reservations: one round trip, Redis server time, one key (one hash slot).
-- KEYS[1]: the limiter's hash {tat, dtat}.
-- ARGV: emission interval µs (1 s / rate), burst (requests that may go at once),
--       longest wait µs a caller will sleep for its slot, the caller's ticket (µs, the
--       slot it was promised when deferred before; 0 for none), the requests the caller
--       makes (an epay call is a token request and the request it serves: both count;
--       at most the burst).
-- Returns {1, wait µs, 0}: a slot is reserved `wait` from now; send then.
--         {0, delay µs, ticket}: no slot within the longest wait; `ticket` is the
--         moment this caller should be served, `delay` how long until it should ask
--         again (max_wait before its ticket). Tickets are handed out one interval
--         apart ('dtat'), so a backlog comes back at the rate it can be served, not as
--         a herd; a caller back early keeps its ticket instead of taking a new one.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local ticket = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if tat < now then tat = now end
-- The earliest moment the bucket holds a token for this request.
local at = tat - (burst - cost) * interval
if at < now then at = now end
local result
local horizon = tat
if at - now <= max_wait then
  tat = tat + cost * interval
  horizon = tat
  redis.call('HSET', KEYS[1], 'tat', string.format('%d', tat))
  result = {1, at - now, 0}
else
  if ticket < at then
    -- No ticket, or the slots before it were taken meanwhile: join the back.
    local dtat = tonumber(redis.call('HGET', KEYS[1], 'dtat') or '0')
    if dtat < at then dtat = at end
    ticket = dtat
    redis.call('HSET', KEYS[1], 'dtat', string.format('%d', dtat + cost * interval))
  end
  if ticket + cost * interval > horizon then horizon = ticket + cost * interval end
  result = {0, ticket - max_wait - now, ticket}
end
redis.call('PEXPIRE', KEYS[1], math.ceil((horizon - now) / 1000) + 1000)
return result
