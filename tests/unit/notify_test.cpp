// Notifications (library/notify_policy.hpp, adapters/hmac.hpp,
// library/notify_config.cpp): the signature, which events a sink wants,
// what it receives, the retry policy, the bounded queue and the
// `notifications:` section with its strict keys.

#include "adapters/hmac.hpp"
#include "library/config.hpp"
#include "library/notify_policy.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace atlas;
using namespace atlas::notify;
using namespace std::chrono_literals;

namespace {

job_event sample(std::string state = "completed", std::string project = "alpha",
                 std::string user = "erin") {
  job_event ev;
  ev.id = "1700000000000-3";
  ev.job_id = "job-1";
  ev.state = std::move(state);
  ev.from = "running";
  ev.user = std::move(user);
  ev.project = std::move(project);
  ev.node = "127.0.0.1-5000";
  ev.return_code = 0;
  ev.time = 1700000000.25;
  return ev;
}

struct notify_home {
  std::string path;
  notify_home() {
    std::string tmpl = (fs::temp_directory_path() / "atlas-notify-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~notify_home() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  loaded<node_config> load(const std::string& yaml, std::map<std::string, std::string> env = {}) const {
    fs::create_directories(path + "/config");
    std::ofstream(path + "/config/atlas.config.yaml") << yaml;
    env.emplace("FOUNDATIONS_HOME", path);
    env.emplace("HOME", path);
    return load_node_config(env, start_flags{});
  }
};

} // namespace

TEST_CASE("the HMAC-SHA256 of RFC 4231's second case is its published digest", "[notify]") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_sha256_hex("", "").size() == 64);
}

TEST_CASE("a job event of the stream is read with every field; a node event is not one", "[notify]") {
  auto ev = parse_job_event("5-1", R"({"kind":"job","time":12.5,"job_id":"j","state":"failed",)"
                                   R"("from":"running","user":"u","project":"p","node":"n",)"
                                   R"("slot":"n/0","reason":"exit code 3","return_code":3,"n":3})");
  REQUIRE(ev);
  CHECK(ev->id == "5-1");
  CHECK(ev->state == "failed");
  CHECK(ev->from == "running");
  CHECK(ev->return_code == 3);
  CHECK(ev->reason == "exit code 3");
  CHECK(ev->time == 12.5);
  auto queued = parse_job_event("5-2", R"({"kind":"job","time":1,"job_id":"j","state":"queued",)"
                                       R"("from":"","return_code":null})");
  REQUIRE(queued);
  CHECK_FALSE(queued->return_code);
  CHECK_FALSE(parse_job_event("5-3", R"({"kind":"node","node":"n","event":"joined"})"));
  CHECK_FALSE(parse_job_event("5-4", "not json"));
}

TEST_CASE("a sink wants the default states unless it names its own", "[notify]") {
  notify_sink_settings s;
  for (auto st : {"queued", "running", "completed", "failed", "cancelled"})
    CHECK(wanted(s, sample(st)));
  CHECK_FALSE(wanted(s, sample("pending")));
  CHECK_FALSE(wanted(s, sample("lost")));
  s.events = {"failed", "stopped"};
  CHECK(wanted(s, sample("failed")));
  CHECK(wanted(s, sample("cancelled")));
  CHECK_FALSE(wanted(s, sample("completed")));
}

TEST_CASE("a sink filtered by project and user wants only their events", "[notify]") {
  notify_sink_settings s;
  s.projects = {"alpha", "beta"};
  CHECK(wanted(s, sample("completed", "beta")));
  CHECK_FALSE(wanted(s, sample("completed", "gamma")));
  s.users = {"erin"};
  CHECK(wanted(s, sample("completed", "alpha", "erin")));
  CHECK_FALSE(wanted(s, sample("completed", "alpha", "frank")));
  CHECK(event_state_name("stopped") == "cancelled");
  CHECK(event_state_name("done").empty());
}

TEST_CASE("the webhook body carries the event's fields and its id", "[notify]") {
  auto body = webhook_body(sample());
  CHECK(body == R"({"event_id":"1700000000000-3","job_id":"job-1","state":"completed",)"
                R"("from":"running","user":"erin","project":"alpha","node":"127.0.0.1-5000",)"
                R"("reason":"","return_code":0,"time":1700000000.25})");
  auto q = sample("queued");
  q.return_code.reset();
  CHECK(webhook_body(q).find(R"("return_code":null)") != std::string::npos);
}

TEST_CASE("the Slack message reads as the original's", "[notify]") {
  auto text = slack_text(sample("failed"));
  CHECK(text.rfind("Job Failed\nJob Id: job-1\nTimestamp: ", 0) == 0);
  CHECK(text.find("\nProject Name: alpha") != std::string::npos);
  CHECK(text.find(".250000") != std::string::npos);
  auto body = slack_body(sample(), "#jobs");
  CHECK(body.rfind(R"({"channel":"#jobs","text":"Job Completed\nJob Id: job-1)", 0) == 0);
}

TEST_CASE("retries back off exponentially up to a cap, and only for passing failures", "[notify]") {
  CHECK(retry_delay(2) == 500ms);
  CHECK(retry_delay(3) == 1000ms);
  CHECK(retry_delay(4) == 2000ms);
  CHECK(retry_delay(30) == 30000ms);
  CHECK(retry_delay(5, 100ms, 300ms) == 300ms);
  CHECK(worth_retrying(0, true));
  CHECK(worth_retrying(503, false));
  CHECK(worth_retrying(429, false));
  CHECK(worth_retrying(408, false));
  CHECK_FALSE(worth_retrying(404, false));
  CHECK_FALSE(worth_retrying(401, false));
}

TEST_CASE("a full queue drops its oldest entry and says so", "[notify]") {
  bounded_queue<int> q(3);
  CHECK(q.push(1) == 0);
  CHECK(q.push(2) == 0);
  CHECK(q.push(3) == 0);
  CHECK(q.push(4) == 1);
  CHECK(q.size() == 3);
  CHECK(q.pop() == 2);
  CHECK(q.pop() == 3);
  CHECK(q.pop() == 4);
  CHECK_FALSE(q.pop());
  bounded_queue<int> tiny(0);
  CHECK(tiny.capacity() == 1);
}

TEST_CASE("stream ids compare by time, then sequence", "[notify]") {
  CHECK(id_before("0", "1-0"));
  CHECK(id_before("", "0-1"));
  CHECK(id_before("5-9", "5-10"));
  CHECK(id_before("5-10", "6-0"));
  CHECK_FALSE(id_before("6-0", "6-0"));
  CHECK_FALSE(id_before("10-0", "9-99"));
}

TEST_CASE("the notifications section reads webhooks and Slack with their defaults", "[notify][config]") {
  notify_home h;
  auto c = h.load("notifications:\n"
                  "  webhooks:\n"
                  "    - url: http://127.0.0.1:9/hook\n"
                  "      secret: s3cret\n"
                  "      events: [completed, failed, stopped]\n"
                  "      projects: [alpha]\n"
                  "    - name: ops\n"
                  "      url: https://example.org/h\n"
                  "      secret_env: HOOK_SECRET\n"
                  "      users: erin\n"
                  "      timeout_s: 3\n"
                  "      max_queue: 7\n"
                  "      max_tries: 2\n"
                  "  slack:\n"
                  "    channel: '#jobs'\n"
                  "    api_url: http://127.0.0.1:9/api/chat.postMessage\n",
                  {{"HOOK_SECRET", "from-env"}, {"FOUNDATIONS_SLACK_TOKEN", "xoxb-1"}});
  REQUIRE(c.ok());
  auto& s = c.config.notify_sinks;
  REQUIRE(s.size() == 3);
  CHECK(s[0].name == "webhook-1");
  CHECK(s[0].secret == "s3cret");
  CHECK(s[0].events == std::vector<std::string>{"completed", "failed", "stopped"});
  CHECK(s[0].projects == std::vector<std::string>{"alpha"});
  CHECK(s[0].timeout_s == 10);
  CHECK(s[1].name == "ops");
  CHECK(s[1].secret == "from-env");
  CHECK(s[1].users == std::vector<std::string>{"erin"});
  CHECK(s[1].max_queue == 7);
  CHECK(s[1].max_tries == 2);
  CHECK(s[2].kind == "slack");
  CHECK(s[2].secret == "xoxb-1");
  CHECK(s[2].channel == "#jobs");
  CHECK(s[2].url == "http://127.0.0.1:9/api/chat.postMessage");
}

TEST_CASE("a wrong notifications key stops loading and names the key", "[notify][config]") {
  notify_home h;
  auto typo = h.load("notifications:\n  webhooks:\n    - url: http://x/\n      event: [failed]\n");
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.error.find("notifications.webhooks[0].event: unknown key") != std::string::npos);
  auto top = h.load("notifications:\n  email: {}\n");
  REQUIRE_FALSE(top.ok());
  CHECK(top.error.find("notifications.email: unknown key") != std::string::npos);
  auto state = h.load("notifications:\n  webhooks:\n    - url: http://x/\n      events: [done]\n");
  REQUIRE_FALSE(state.ok());
  CHECK(state.error.find("notifications.webhooks[0].events") != std::string::npos);
  auto no_url = h.load("notifications:\n  webhooks:\n    - secret: x\n");
  REQUIRE_FALSE(no_url.ok());
  CHECK(no_url.error.find("webhooks[0].url") != std::string::npos);
  auto no_channel = h.load("notifications:\n  slack: {token_env: T}\n", {{"T", "x"}});
  REQUIRE_FALSE(no_channel.ok());
  CHECK(no_channel.error.find("notifications.slack.channel") != std::string::npos);
}

TEST_CASE("a master whose secret variable is unset says which one, without its value", "[notify][config]") {
  notify_home h;
  auto c = h.load("notifications:\n  webhooks:\n    - url: http://x/\n      secret_env: NOPE_SECRET\n");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error.find("notifications.webhooks[0].secret_env") != std::string::npos);
  CHECK(c.error.find("NOPE_SECRET is not set") != std::string::npos);
  auto slack = h.load("notifications:\n  slack: {channel: x}\n");
  REQUIRE_FALSE(slack.ok());
  CHECK(slack.error.find("FOUNDATIONS_SLACK_TOKEN") != std::string::npos);
}
