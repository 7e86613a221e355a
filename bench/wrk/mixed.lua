-- The soak's mixed workload: 70% GET, 10% list (walking pages), 10% create, 10% update.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids
local counter = 0
local queue, head, tail = {}, 1, 0
local run = os.time()

function init(args)
  seed()
  ids = load_ids()
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
    local body = string.format(
      '{"name":"Soak %d-%d","metadata":{"plan":"free"},' ..
      '"external_user_details":{"reference_id":"soak-%d-%d-%d","country":"FR"}}',
      thread_id, counter, run, thread_id, counter)
    return wrk.format("POST", "/v1/user_profiles", nil, body)
  end
  local body = string.format('{"metadata":{"plan":"s%d-%d"}}', thread_id, counter)
  return wrk.format("POST", "/v1/user_profiles/" .. ids[math.random(#ids)], nil, body)
end

function response(status, headers, body)
  if status ~= 200 or #body < 600 then return end
  local cursor = body:match('"next_page":"([^"]+)"', #body - 600)
  if cursor then
    pages = pages + 1
    if tail - head < 1000 then
      tail = tail + 1
      queue[tail] = cursor
    end
  end
end
