-- Notes that the event for a state was confirmed by the broker, so that a redelivered
-- or duplicated command does not publish it again. KEYS[1]: the record. ARGV: state.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ev:' .. ARGV[1], 1)
return 1
