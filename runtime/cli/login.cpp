// `foundations login` and `foundations logout`: exchange a user's Keycloak
// credentials for a token through the scheduler (it talks to Keycloak), and
// keep it in $FOUNDATIONS_HOME/credentials.yaml for the other commands.

#include <termios.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <string>

#include "adapters/jwt.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/credentials.hpp"

namespace atlas::cli {

namespace {

/// Reads one line from stdin; without echo when `secret` and stdin is a terminal.
std::string prompt(context& ctx, const std::string& label, bool secret) {
  ctx.err << label << std::flush;
  termios old{};
  bool hide = secret && isatty(0) == 1 && tcgetattr(0, &old) == 0;
  if (hide) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(0, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (hide) {
    tcsetattr(0, TCSAFLUSH, &old);
    ctx.err << "\n";
  }
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  return line;
}

/// A scheduler URL given directly, or the one of submission/<env>.config.yaml.
std::optional<std::string> scheduler_url_of(context& ctx, const std::string& target) {
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    std::string url = target;
    while (!url.empty() && url.back() == '/')
      url.pop_back();
    return url;
  }
  auto sc = scheduler_for(ctx, target);
  if (!sc)
    return std::nullopt;
  return sc->scheduler_url;
}

} // namespace

int login(context& ctx, const args& a) {
  auto url = scheduler_url_of(ctx, a.positional[0]);
  if (!url)
    return 1;
  std::string user = a.has("username") ? a.flag("username") : prompt(ctx, "Username: ", false);
  std::string password = a.has("password") ? a.flag("password") : prompt(ctx, "Password: ", true);
  if (user.empty())
    return ctx.err << "error: a user name is required\n", 2;
  http_options o = options(ctx);
  o.token = ""; // Basic credentials instead of a bearer token
  o.headers.push_back("Authorization: Basic " + base64_encode(user + ":" + password));
  auto r = http_client::get(*url + "/api/v2beta/auth/cli_login", o);
  if (r.status == 401 || r.status == 400) {
    ctx.err << "error: login refused for user '" << user << "' (wrong user name or password)\n";
    return 1;
  }
  if (r.status == 404 && r.body.find("authentication is off") != std::string::npos) {
    ctx.err << "error: " << *url << " does not use authentication (started without -p); "
            << "no login is needed\n";
    return 1;
  }
  if (!r.ok())
    return fail(ctx, r);
  auto v = json_body(ctx, r);
  if (!v)
    return 1;
  credentials c;
  c.scheduler_url = *url;
  c.username = user;
  c.access_token = v->get_string("access_token").value_or("");
  c.refresh_token = v->get_string("refresh_token").value_or("");
  if (c.access_token.empty())
    return ctx.err << "error: the scheduler's answer holds no access_token\n", 1;
  c.expires_at = jwt::unverified_expiry(c.access_token).value_or(0);
  if (c.expires_at == 0)
    if (auto in = v->get_int("expires_in"))
      c.expires_at = static_cast<int64_t>(std::time(nullptr)) + *in;
  if (auto st = save_credentials(ctx.home, c); !st)
    return ctx.err << "error: " << st.error() << "\n", 1;
  ctx.out << "Logged in to " << *url << " as " << user;
  if (c.expires_at > 0)
    ctx.out << " (token valid for " << (c.expires_at - std::time(nullptr)) / 60 << " min)";
  ctx.out << "; credentials in " << credentials_file(ctx.home) << std::endl;
  return 0;
}

int logout(context& ctx, const args&) {
  auto c = load_credentials(ctx.home);
  if (!c) {
    ctx.out << "Not logged in." << std::endl;
    return 0;
  }
  if (c->scheduler_url.empty()) { // the original client's login: nothing to revoke here
    forget_credentials(ctx.home);
    ctx.out << "Logged out (removed " << credentials_file(ctx.home) << ")" << std::endl;
    return 0;
  }
  json::writer w;
  w.begin_object().kv("refresh_token", c->refresh_token).end_object();
  http_options o = options(ctx);
  o.token = c->access_token;
  auto r = http_client::post_json(c->scheduler_url + "/api/v2beta/auth/logout", w.str(), o);
  forget_credentials(ctx.home);
  if (!r.ok())
    ctx.err << "warning: the scheduler did not confirm the logout ("
            << (r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error)
            << "); the stored login was removed anyway\n";
  ctx.out << "Logged out " << c->username << " from " << c->scheduler_url << std::endl;
  return 0;
}

} // namespace atlas::cli
