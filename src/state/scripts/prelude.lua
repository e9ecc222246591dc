-- Shared by every script (prepended when the store loads them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- How long one process may take to publish an event it claimed before another may.
local PUBLISH_CLAIM_MS = 10000

local function is_terminal(st)
  return st == 'succeeded' or st == 'declined' or st == 'failed' or st == 'rejected'
end

-- 'ev:<state>' is '1' once the event for that state was confirmed by the broker (at
-- 'pub:<state>', server ms), or 'p<deadline>' while one process is publishing it. Returns 1 published, 2 being
-- published, 0 neither (never claimed, released, or the claim ran out).
local function published(rec, st)
  local v = redis.call('HGET', rec, 'ev:' .. st)
  if not v then return 0 end
  if v == '1' then return 1 end
  if tonumber(string.sub(v, 2)) > now then return 2 end
  return 0
end

local function claim_publish(rec, st)
  redis.call('HSET', rec, 'ev:' .. st, 'p' .. (now + PUBLISH_CLAIM_MS))
end
