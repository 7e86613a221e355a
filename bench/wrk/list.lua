-- List, limit 20, walking pages: every response's next_page becomes a later request, so each
-- connection's worth of walkers goes deeper page by page; a walk that reaches the end starts
-- over at the first page. (wrk's Lua does not say which connection a response came on, so the
-- cursors wait in one queue per thread: the walks interleave, each still page after page.)
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local queue, head, tail = {}, 1, 0
local FIRST = "/v1/user_profiles?limit=20"

function init(args)
  seed()
end

function request()
  if head <= tail then
    local cursor = queue[head]
    queue[head] = nil
    head = head + 1
    return wrk.format("GET", FIRST .. "&page=" .. cursor)
  end
  return wrk.format("GET", FIRST)
end

function response(status, headers, body)
  if status ~= 200 then return end
  pages = pages + 1
  local cursor = body:match('"next_page":"([^"]+)"', #body - 600)
  if cursor then
    tail = tail + 1
    queue[tail] = cursor
  else
    walks = walks + 1
  end
end
