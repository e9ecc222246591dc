-- The event bookkeeping of one state. KEYS[1]: the record. ARGV: state, action:
--   'peek'    answer published() (1 published, 2 being published, 0 neither);
--   'claim'   take the right to publish it (1), unless published or being published (0);
--   'done'    the broker confirmed it (and when: 'pub:<state>', for operators); returns
--             the record's age in ms the first time (its time to certainty, for a
--             terminal state), -1 after;
--   'release' publishing failed: let the next attempt publish at once.
local rec = KEYS[1]
local st = ARGV[1]
if redis.call('EXISTS', rec) == 0 then return 0 end
if ARGV[2] == 'peek' then
  return published(rec, st)
elseif ARGV[2] == 'claim' then
  if published(rec, st) ~= 0 then return 0 end
  claim_publish(rec, st)
  return 1
elseif ARGV[2] == 'done' then
  if redis.call('HGET', rec, 'ev:' .. st) == '1' then return -1 end
  redis.call('HSET', rec, 'ev:' .. st, 1, 'pub:' .. st, now)
  local created = tonumber(redis.call('HGET', rec, 'created'))
  if not created then return -1 end
  return math.max(0, now - created)
elseif redis.call('HGET', rec, 'ev:' .. st) ~= '1' then
  redis.call('HDEL', rec, 'ev:' .. st)
end
return 1
