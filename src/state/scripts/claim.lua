-- Claims a command for one worker. KEYS[1]: the command's record.
-- ARGV: fingerprint, owner token, lease ms, provider payment id, meta JSON, the command's
-- W3C traceparent ('' if none), retention ms.
-- Returns {verdict, fence, state-or-mode, attempts-or-published, ms since the last claim},
-- and for a claim the payment id the record keeps (the one its payment was sent as).
-- The first claimer's traceparent is kept ('tp'), so the callback or reconciler that
-- settles the payment publishes its result in the same trace.
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then
  redis.call('HSET', rec, 'st', 'submitting', 'fp', ARGV[1], 'own', ARGV[2], 'fence', 1,
    'lease', now + tonumber(ARGV[3]), 'pid', ARGV[4], 'meta', ARGV[5], 'att', 1,
    'created', now, 'upd', now, 'sent', now)
  if ARGV[6] ~= '' then redis.call('HSET', rec, 'tp', ARGV[6]) end
  redis.call('PEXPIRE', rec, tonumber(ARGV[7]))
  return {'claimed', 1, 'fresh', 1, 0, ARGV[4]}
end
local fp = redis.call('HGET', rec, 'fp')
if fp and fp ~= '' and fp ~= ARGV[1] then
  return {'conflict', 0, st, 0, 0}
end
if not fp or fp == '' then
  -- Made by a callback before the command was seen (Redis lost it): adopt it.
  redis.call('HSET', rec, 'fp', ARGV[1], 'meta', ARGV[5])
end
if is_terminal(st) then
  return {'terminal', 0, st, published(rec, st), 0}
end
if st == 'submitted' or st == 'action_required' then
  return {'awaiting', 0, st, 0, 0}
end
if st == 'submitting' and tonumber(redis.call('HGET', rec, 'lease') or '0') > now then
  return {'busy', 0, st, 0, 0}
end
-- Released for a retry ('received'), a lease that ran out, or an outcome nobody knows.
local mode = 'recover'
if st == 'received' then mode = 'fresh' end
local fence = redis.call('HINCRBY', rec, 'fence', 1)
local att = redis.call('HINCRBY', rec, 'att', 1)
-- 'sent' is when the last request may have gone, no later than it: a fresh claim, or a
-- recovery about to send again (renew.lua). A recovery that only asks leaves it, so the
-- time since the last request is not restarted by asking about it.
local since = now - tonumber(redis.call('HGET', rec, 'sent') or '0')
redis.call('HSET', rec, 'st', 'submitting', 'own', ARGV[2], 'lease', now + tonumber(ARGV[3]),
  'upd', now)
if mode == 'fresh' then redis.call('HSET', rec, 'sent', now) end
if ARGV[6] ~= '' then redis.call('HSETNX', rec, 'tp', ARGV[6]) end
-- The record's id wins over the one allocated for this delivery: its payment went out
-- under it. (A record a callback made without one adopts this one.)
local pid = redis.call('HGET', rec, 'pid')
if not pid or pid == '' then
  pid = ARGV[4]
  redis.call('HSET', rec, 'pid', pid)
end
return {'claimed', fence, mode, att, since, pid}
