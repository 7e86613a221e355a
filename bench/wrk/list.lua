-- List, limit 20, walking pages: every response's next_page becomes a later request, so each
-- connection's worth of walkers goes deeper page by page; a walk ends at the last page or, at
-- random, after any page (one in WALK_END, a mean of WALK_END pages), and a new one starts at
-- the first page. (wrk's Lua does not say which connection a response came on, so the cursors
-- wait in one queue per thread: the walks interleave, each still page after page.)
--
-- Why walks end at random: all 64 start at the first page at once, and with one queue they
-- would go on in step, each page asked for by many connections in the same moment, which the
-- server answers from one read (decisions O7) and one rendering. Walks of random length fall
-- out of step after their first pages, as independent clients are; the first pages, where
-- every walk starts, stay the most read, as a list's first pages are.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local WALK_END = 32
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
  if cursor and math.random(WALK_END) ~= 1 then
    tail = tail + 1
    queue[tail] = cursor
  else
    walks = walks + 1
  end
end
