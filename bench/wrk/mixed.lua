-- The soak's mixed workload, every endpoint of a profile's life at a steady store size:
-- 70% GET, 10% list (walking pages), 10% update, 5% create, 5% delete.
-- A delete removes the oldest profile this thread created and has not deleted yet (a create
-- when there is none), so creates and deletes balance and the store stays at its loaded size
-- (plus the few profiles created and not yet deleted): a memory soak measures the server, not a
-- store that grows under it. (Until round 10 the mix was 10% create and no delete: 10 minutes
-- grew a 1M store by two thirds, and the pages of the file mapped for reads grew with it.)
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids
local counter = 0
local queue, head, tail = {}, 1, 0 -- list cursors to follow
local made, made_head, made_tail = {}, 1, 0 -- ids this thread created, oldest first
local run = os.time()

function init(args)
  seed()
  ids = load_ids()
end

local function create()
  local body = string.format(
    '{"name":"Soak %d-%d","metadata":{"plan":"free"},' ..
    '"external_user_details":{"reference_id":"soak-%d-%d-%d","country":"FR"}}',
    thread_id, counter, run, thread_id, counter)
  return wrk.format("POST", "/v1/user_profiles", nil, body)
end

function request()
  counter = counter + 1
  local r = math.random(100)
  if r <= 70 then
    return wrk.format("GET", "/v1/user_profiles/" .. ids[math.random(#ids)])
  elseif r <= 80 then
    if head <= tail then
      local cursor = queue[head]
      queue[head] = nil
      head = head + 1
      return wrk.format("GET", "/v1/user_profiles?limit=20&page=" .. cursor)
    end
    return wrk.format("GET", "/v1/user_profiles?limit=20")
  elseif r <= 90 then
    local body = string.format('{"metadata":{"plan":"s%d-%d"}}', thread_id, counter)
    return wrk.format("POST", "/v1/user_profiles/" .. ids[math.random(#ids)], nil, body)
  elseif r <= 95 or made_head > made_tail then
    return create()
  end
  local id = made[made_head]
  made[made_head] = nil
  made_head = made_head + 1
  return wrk.format("DELETE", "/v1/user_profiles/" .. id)
end

function response(status, headers, body)
  if status ~= 200 then return end
  if body:sub(1, 8) == '{"data":' then
    local cursor = body:match('"next_page":"([^"]+)"', #body - 600)
    if cursor then
      pages = pages + 1
      if tail - head < 1000 then
        tail = tail + 1
        queue[tail] = cursor
      end
    end
    return
  end
  -- A profile: this thread's create when it carries a soak reference (GET and update only
  -- ever name profiles of the loaded store, whose references are not "soak-").
  if body:find('"reference_id":"soak-', 1, true) then
    local id = body:match('^{"id":"(uprof_[^"]+)"')
    if id then
      made_tail = made_tail + 1
      made[made_tail] = id
    end
  end
end
