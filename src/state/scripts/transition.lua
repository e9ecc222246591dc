-- A worker's write, allowed only while it still holds the lease it claimed.
-- KEYS[1]: the record. ARGV: owner token, fence, new state, outcome JSON ('' keeps it),
-- 'uncounted' when the claim must not count as an attempt (a payout held for the
-- provider's working hours) or ''.
-- Returns {verdict, state before}.
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then return {'missing', ''} end
if is_terminal(st) then return {'terminal', st} end
if redis.call('HGET', rec, 'own') ~= ARGV[1] or redis.call('HGET', rec, 'fence') ~= ARGV[2] then
  return {'fenced', st}
end
local to = ARGV[3]
redis.call('HSET', rec, 'st', to, 'upd', now)
if ARGV[4] ~= '' then redis.call('HSET', rec, 'out', ARGV[4]) end
if to ~= 'submitting' then redis.call('HDEL', rec, 'own', 'lease') end
if ARGV[5] == 'uncounted' then redis.call('HINCRBY', rec, 'att', -1) end
-- The recorder publishes these events: a copy that finds one unpublished may take over.
if is_terminal(to) or to == 'action_required' then claim_publish(rec, to) end
return {'ok', st}
