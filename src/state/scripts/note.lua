-- Notes on an existing record what an operator must see (a callback refused, a payment
-- overdue), without changing its state, so the payment stays open for the status query
-- to settle. Notes accumulate ("; " between them), a note already there is not added
-- again, and only the last 2 KB are kept.
-- KEYS[1]: the record. ARGV: the note. Returns 1, or 0 when there is no record.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local note = ARGV[1]
local old = redis.call('HGET', KEYS[1], 'note')
if old and old ~= '' then
  if string.find(old, note, 1, true) then
    return 1
  end
  note = old .. '; ' .. note
end
local max = 2048
if #note > max then
  local from = #note - max + 1
  -- Never from inside a UTF-8 character.
  while from <= #note and string.byte(note, from) >= 128 and string.byte(note, from) < 192 do
    from = from + 1
  end
  note = string.sub(note, from)
end
redis.call('HSET', KEYS[1], 'note', note, 'noted', now)
return 1
