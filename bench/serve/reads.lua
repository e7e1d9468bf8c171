-- wrk script for `GET /v1/me/consents`, rotating over many members' tokens (one `MEMBER TOKEN` per line of the
-- file given after `--`), so every request reads another member's consent.
local headers = {}
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    local t = line:match("^%d+ (.+)$")
    if t then headers[#headers + 1] = { ["Authorization"] = "Bearer " .. t } end
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#headers)
end

request = function()
  i = i % #headers + 1
  return wrk.format("GET", "/v1/me/consents", headers[i])
end
