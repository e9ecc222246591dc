-- Notes on an existing record what an operator must see (a callback refused), without
-- changing its state, so the payment stays open for the status query to settle.
-- KEYS[1]: the record. ARGV: the note. Returns 1, or 0 when there is no record.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'note', ARGV[1], 'noted', now)
return 1
