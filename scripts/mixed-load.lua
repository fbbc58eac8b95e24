-- wrk script for scripts/bench-load: one request in three is a POST to
-- /visits (a write the bench counts afterwards in the database), the others
-- GET the path given after `--` (default /). Outcomes are counted from
-- nginx's access log, which names each request's method.
local path = "/"

function init(args)
  path = args[1] or path
  counter = 0
end

function request()
  counter = counter + 1
  if counter % 3 == 0 then
    return wrk.format("POST", "/visits", {["Content-Length"] = "0"}, "")
  end
  return wrk.format("GET", path)
end
