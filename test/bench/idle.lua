-- wrk script for make bench: Idle polls of one device per wrk thread (the
-- device whose certificate wrkcert.so gave the thread), keep-alive.
local ffi = require("ffi")
ffi.cdef [[const char *wrkcert_cn(void);]]
local req

request = function()
    local udid = ffi.string(ffi.C.wrkcert_cn())
    -- wrk calls request() once on its main thread to check the script:
    -- there is no certificate (no UDID) there, so nothing is kept then.
    if req == nil and udid ~= "" then
        local body = '<?xml version="1.0" encoding="UTF-8"?>\n' ..
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" ' ..
            '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' ..
            '<plist version="1.0">\n<dict>\n\t<key>Status</key>\n\t<string>Idle</string>\n' ..
            '\t<key>UDID</key>\n\t<string>' .. udid .. '</string>\n</dict>\n</plist>\n'
        req = wrk.format("PUT", "/mdm", {["Content-Type"] = "application/x-apple-aspen-mdm",
            ["User-Agent"] = "MDM/1.0"}, body)
    end
    return req or wrk.format("PUT", "/mdm")
end
