#include "adapters/docker_client.hpp"

#include <algorithm>


#include "adapters/http_client.hpp"
#include "adapters/json.hpp"

namespace atlas {

namespace {

constexpr const char* api_version = "v1.41";

http_options engine_options(const std::string& socket, long request_timeout_s) {
  http_options o;
  o.token.clear();
  o.peer = "the Docker engine";
  o.unix_socket = socket;
  o.connect_timeout_s = 5;
  o.request_timeout_s = request_timeout_s;
  o.stall_timeout_s = 0; // log streams may be silent for long
  return o;
}

/// The engine's {"message": ...}, or the body as it is.
std::string engine_message(const std::string& body) {
  std::string err;
  auto v = json::parse(body, err);
  if (v && v->is_object())
    if (auto m = v->get_string("message"))
      return *m;
  auto text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  return text;
}

/// The engine's refusal (or a transport failure) as a failed status.
status failed(const std::string& what, const http_result& r) {
  return status::fail(describe_engine_error(what, r.status, r.body, r.error));
}

} // namespace

std::string describe_engine_error(const std::string& what, long status, const std::string& body,
                                  const std::string& transport_error) {
  if (!transport_error.empty())
    return "Docker " + what + " failed: " + transport_error;
  auto message = engine_message(body);
  if (status == 400 && message.find("too new") != std::string::npos)
    return std::string{"the Docker engine refused API "} + api_version + " (" + message
           + "); Atlas needs Docker 20.10 or later";
  if (status == 404 && message.find("No such image") != std::string::npos)
    return "Docker image not found on this node (" + message
           + "); pull or import it on the node first";
  if (status == 404)
    return "Docker " + what + ": " + message;
  return "Docker " + what + " failed (engine answered " + std::to_string(status) + "): " + message;
}

docker_client::docker_client(std::string socket) : socket_(std::move(socket)) {}

std::string docker_client::url(const std::string& path) const {
  return std::string{"http://docker/"} + api_version + path;
}

result<bool> docker_client::ping() const {
  auto r = http_client::get("http://docker/_ping", engine_options(socket_, 5));
  if (!r.ok())
    return failed("ping", r);
  return true;
}

result<std::string> docker_client::create(const std::string& name,
                                           const std::string& body) const {
  auto path = "/containers/create" + (name.empty() ? std::string{} : "?name=" + http_client::escape(name));
  auto r = http_client::post_json(url(path), body, engine_options(socket_, 60));
  if (!r.ok())
    return failed("create", r);
  std::string err;
  auto v = json::parse(r.body, err);
  auto id = v && v->is_object() ? v->get_string("Id") : std::nullopt;
  if (!id || id->empty())
    return status::fail("Docker create answered without a container id: " + r.body);
  return *id;
}

result<bool> docker_client::start(const std::string& id) const {
  auto r = http_client::request("POST", url("/containers/" + id + "/start"), {}, {},
                                engine_options(socket_, 60));
  if (!r.ok() && r.status != 304) // 304: already started
    return failed("start", r);
  return true;
}

result<int64_t> docker_client::wait(const std::string& id) const {
  auto r = http_client::request("POST", url("/containers/" + id + "/wait"), {}, {},
                                engine_options(socket_, 0));
  if (!r.ok())
    return failed("wait", r);
  std::string err;
  auto v = json::parse(r.body, err);
  auto code = v && v->is_object() ? v->get_int("StatusCode") : std::nullopt;
  if (!code)
    return status::fail("Docker wait answered without an exit code: " + r.body);
  return *code;
}

result<container_state> docker_client::inspect(const std::string& id) const {
  auto r = http_client::get(url("/containers/" + id + "/json"), engine_options(socket_, 30));
  if (!r.ok())
    return failed("inspect", r);
  std::string err;
  auto v = json::parse(r.body, err);
  const json::value* st = v && v->is_object() ? v->find("State") : nullptr;
  if (st == nullptr || !st->is_object())
    return status::fail("Docker inspect answered without a state: " + err);
  container_state out;
  out.status = st->get_string("Status").value_or("");
  out.exit_code = st->get_int("ExitCode").value_or(0);
  out.error = st->get_string("Error").value_or("");
  if (auto b = st->find("Running"); b && b->type == json::value::kind::boolean)
    out.running = b->boolean;
  if (auto b = st->find("OOMKilled"); b && b->type == json::value::kind::boolean)
    out.oom_killed = b->boolean;
  return out;
}

result<container_usage> docker_client::stats(const std::string& id) const {
  auto r = http_client::get(url("/containers/" + id + "/stats?stream=false&one-shot=true"),
                            engine_options(socket_, 10));
  if (!r.ok())
    return failed("stats", r);
  std::string err;
  auto v = json::parse(r.body, err);
  if (!v || !v->is_object())
    return status::fail("Docker stats answered no JSON object: " + err);
  container_usage out;
  auto number = [](const json::value* o, const char* key) {
    auto x = o != nullptr ? o->find(key) : nullptr;
    return x != nullptr && x->is_number() ? x->number : 0.0;
  };
  auto cpu = v->find("cpu_stats");
  out.cpu_seconds = number(cpu != nullptr ? cpu->find("cpu_usage") : nullptr, "total_usage") / 1e9;
  auto mem = v->find("memory_stats");
  out.memory_bytes = static_cast<uint64_t>(std::max(number(mem, "max_usage"), number(mem, "usage")));
  return out;
}

result<bool> docker_client::stop(const std::string& id, int timeout_s) const {
  auto r = http_client::request("POST",
                                url("/containers/" + id + "/stop?t=" + std::to_string(timeout_s)),
                                {}, {}, engine_options(socket_, timeout_s + 30));
  if (!r.ok() && r.status != 304) // 304: not running
    return failed("stop", r);
  return true;
}

result<bool> docker_client::kill(const std::string& id, const std::string& signal) const {
  auto r = http_client::request("POST",
                                url("/containers/" + id + "/kill?signal=" + http_client::escape(signal)),
                                {}, {}, engine_options(socket_, 30));
  if (!r.ok())
    return failed("kill", r);
  return true;
}

result<bool> docker_client::remove(const std::string& id) const {
  auto r = http_client::del(url("/containers/" + id + "?force=1&v=1"), engine_options(socket_, 60));
  if (!r.ok() && r.status != 404)
    return failed("remove", r);
  return true;
}

result<std::vector<container_summary>>
docker_client::list_labelled(const std::string& key, const std::string& value) const {
  json::writer filters;
  filters.begin_object().key("label").begin_array().value(key + "=" + value).end_array().end_object();
  auto r = http_client::get(url("/containers/json?all=1&filters=" + http_client::escape(filters.str())),
                            engine_options(socket_, 30));
  if (!r.ok())
    return failed("list", r);
  std::string err;
  auto v = json::parse(r.body, err);
  if (!v || !v->is_array())
    return status::fail("Docker list answered something else than a list: " + err);
  std::vector<container_summary> out;
  for (auto& c : v->array) {
    if (!c.is_object())
      continue;
    container_summary s;
    s.id = c.get_string("Id").value_or("");
    s.state = c.get_string("State").value_or("");
    if (auto labels = c.find("Labels"); labels && labels->is_object())
      s.job_id = labels->get_string("atlas.job_id").value_or("");
    if (!s.id.empty())
      out.push_back(std::move(s));
  }
  return out;
}

result<bool> docker_client::follow_logs(
  const std::string& id, const std::function<void(std::string_view)>& on_chunk) const {
  auto r = http_client::stream_get(url("/containers/" + id + "/logs?follow=1&stdout=1&stderr=1"),
                                   on_chunk, engine_options(socket_, 0));
  if (!r.ok())
    return failed("logs", r);
  return true;
}

} // namespace atlas
