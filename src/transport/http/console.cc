#include "transport/http/console.h"

#include <string>

namespace drover::http {
namespace {

// Scripts, styles, images and API calls from this server only; no inline script, no
// framing, no form posted elsewhere, no base URL changed.
constexpr std::string_view kPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";

Response page(int status, std::string_view content_type, std::string body, bool immutable) {
  Response r;
  r.status = status;
  r.content_type = std::string(content_type);
  r.body = std::move(body);
  r.headers = {{"Content-Security-Policy", std::string(kPolicy)},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               // Built files carry their content's hash in their names: kept for a year.
               // index.html names them, so it is asked again every time.
               {"Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache"}};
  return r;
}

constexpr std::string_view kNotBuilt =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>drover</title></head>"
    "<body><h1>This drover was built without its web console</h1>"
    "<p>Node.js and npm were not found when it was built, or the console's packages were not "
    "installed (<code>npm ci</code> in <code>web/</code>). Install Node.js 20.19 or newer, "
    "run <code>make build</code> (it installs the packages and builds the console into "
    "drover), and start <code>drover serve</code> again. The operator API and the CLI work "
    "without it (docs/console.md).</p></body></html>";

}  // namespace

std::string_view console_content_type(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "json") return "application/json";
  return "application/octet-stream";
}

void add_console(Router& router, std::span<const ConsoleFile> files) {
  auto serve = [files](std::string_view path) {
    if (files.empty()) return page(404, "text/html; charset=utf-8", std::string(kNotBuilt), false);
    if (path.empty()) path = "index.html";
    for (const ConsoleFile& f : files) {
      if (f.path == path) {
        return page(200, console_content_type(path), std::string(f.body),
                    path.starts_with("assets/"));
      }
    }
    return Response::error(404, "not_found", "no console file " + std::string(path));
  };
  // Relative, so that a reverse proxy's prefix stays: "/" and "/console" both resolve
  // "console/" to "/console/", and "/drover/" behind a proxy to "/drover/console/".
  auto to_console = [](const Request&, const Params&) {
    Response r = Response::json(308, "");
    r.content_type = "text/plain";
    r.headers.emplace_back("Location", "console/");
    return r;
  };
  router.add("GET", "/", to_console);
  router.add("GET", "/console", to_console);
  router.add("GET", "/console/", [serve](const Request&, const Params&) { return serve(""); });
  router.add("GET", "/console/{file}",
             [serve](const Request&, const Params& p) { return serve(p.get("file")); });
  router.add("GET", "/console/{dir}/{file}", [serve](const Request&, const Params& p) {
    return serve(std::string(p.get("dir")) + "/" + std::string(p.get("file")));
  });
}

}  // namespace drover::http
