#include "library/tracking/store.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include "adapters/json.hpp"
#include "library/job_index.hpp"
#include "library/tracking/column_index.hpp"
#include "library/tracking/metric_values.hpp"
#include "messages/job_state.hpp"
#include "messages/redis_keys.hpp"

namespace atlas::dashboard {

namespace {

constexpr size_t max_key_chars = 256;
constexpr size_t max_string_value_chars = 4096;

store_answer fail(uint16_t status, std::string message) { return {status, std::move(message)}; }

store_answer unavailable() { return fail(503, "Redis is unavailable; nothing was changed"); }

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

/// Writes a hash reply (field, value, field, value...) as a JSON object whose
/// values are JSON text (`raw`) or strings.
void hash_object(json::writer& w, const redis_reply& r, bool raw) {
  w.begin_object();
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    w.key(r.elements[i].str);
    if (raw)
      w.raw(r.elements[i + 1].str);
    else
      w.value(r.elements[i + 1].str);
  }
  w.end_object();
}

/// One validated batch entry as Redis commands, or an error message.
std::string entry_commands(const std::string& id, const json::value& e, size_t index,
                           std::vector<redis_cmd>& out) {
  auto where = "entry " + std::to_string(index) + ": ";
  if (!e.is_object())
    return where + "not an object";
  auto kind = e.get_string("kind");
  auto key = e.get_string("key");
  if (!kind)
    return where + "kind missing";
  if (!key || key->empty() || key->size() > max_key_chars)
    return where + "key must be a non-empty string of at most 256 characters";
  const json::value* value = e.find("value");
  auto time = e.find("time");
  double t = time && time->is_number() ? time->number : 0;
  if (*kind == "metric") {
    if (!value || !(value->is_number() || value->is_string()))
      return where + "a metric value must be a number or a string";
    if (value->is_string() && value->string.size() > max_string_value_chars)
      return where + "metric value too long";
    auto step = e.get_int("step").value_or(0);
    json::writer latest;
    latest.begin_object().key("value").raw(value->dump()).kv("step", step).kv("time", t)
      .end_object();
    json::writer point;
    point.begin_object().kv("key", *key).key("value").raw(value->dump()).kv("step", step)
      .kv("time", t).end_object();
    out.push_back({"HSET", keys::job_metrics(id), *key, latest.take()});
    out.push_back({"RPUSH", keys::job_metric_series(id), point.take()});
  } else if (*kind == "param") {
    if (!value)
      return where + "a parameter needs a value";
    auto text = value->dump();
    if (text.size() > max_string_value_chars)
      return where + "parameter value too long";
    out.push_back({"HSET", keys::job_params(id), *key, text});
  } else if (*kind == "tag") {
    std::string text;
    if (value && value->is_string())
      text = value->string;
    else if (value && !value->is_null())
      text = value->dump();
    if (text.size() > max_string_value_chars)
      return where + "tag value too long";
    out.push_back({"HSET", keys::job_tags(id), *key, text});
  } else if (*kind == "artifact") {
    auto path = e.get_string("path");
    if (!path || path->empty() || path->front() == '/' || path->find("..") != std::string::npos)
      return where + "an artifact needs a path relative to the job's directory";
    auto size = e.get_int("size").value_or(0);
    json::writer a;
    a.begin_object().kv("path", *path).kv("size", size).kv("time", t).end_object();
    out.push_back({"HSET", keys::job_artifacts(id), *key, a.take()});
  } else {
    return where + "unknown kind '" + *kind + "' (metric, param, tag or artifact)";
  }
  return {};
}

/// What a write for a job needs of its stored record: its project, and
/// its state's name when it has ended.
struct record_facts {
  std::string project;
  std::optional<std::string> ended;
};

record_facts facts_of(const redis_reply& record) {
  record_facts out;
  if (record.type != redis_reply::kind::string)
    return out;
  std::string err;
  auto v = json::parse(record.str, err);
  if (!v || !v->is_object())
    return out;
  out.project = v->get_string("project_name").value_or("");
  auto name = v->get_string("state");
  auto state = name ? parse_job_state(*name) : std::nullopt;
  if (state && is_terminal(*state))
    out.ended = *name;
  return out;
}

/// Why `secret` does not let its holder write for job `id` (none: it
/// does, and `facts` holds what its record says).
std::optional<store_answer> secret_refusal(const redis_tx& tx, const std::string& id,
                                           const std::string& secret, record_facts& facts) {
  auto stored = tx({{"GET", keys::job_secret(id)}, {"GET", keys::job(id)}});
  if (!stored || stored->size() != 2)
    return unavailable();
  auto& digest = (*stored)[0];
  auto given = secret_digest(secret);
  bool missing = digest.type != redis_reply::kind::string;
  bool matches = !secret.empty() && !missing && digest.str.size() == given.size()
                 && CRYPTO_memcmp(digest.str.data(), given.data(), given.size()) == 0;
  facts = facts_of((*stored)[1]);
  // A secret ends with its job; its digest is deleted when the end is
  // written (lookup_writes.cpp), and the record is checked too, for records
  // written before that or a write cut off half way.
  if (facts.ended && (matches || missing))
    return fail(403, "job '" + id + "' has ended (" + *facts.ended
                       + "): its tracking secret no longer works");
  if (!matches)
    return fail(403, "wrong or missing job secret");
  return std::nullopt;
}

store_answer track(const redis_tx& tx, const std::string& id, const std::string& secret,
                   const std::string& body) {
  record_facts facts;
  if (auto refused = secret_refusal(tx, id, secret, facts))
    return *refused;
  std::string err;
  auto doc = json::parse(body, err);
  if (!doc)
    return fail(400, "tracking batch is not JSON: " + err);
  auto entries = doc->find("entries");
  if (!entries || !entries->is_array())
    return fail(400, "tracking batch needs an \"entries\" array");
  std::vector<redis_cmd> cmds;
  for (size_t i = 0; i < entries->array.size(); ++i)
    if (auto bad = entry_commands(id, entries->array[i], i, cmds); !bad.empty())
      return fail(400, bad + "; nothing of this batch was stored");
  if (!metric_value_commands(tx, id, *entries, cmds))
    return unavailable();
  if (!facts.project.empty()) // the metric and parameter indexes sort the listing by them
    for (auto& c : column_writes(facts.project, id, *entries))
      cmds.push_back(std::move(c));
  if (!cmds.empty())
    cmds.push_back(job_index::bump_version()); // listings show it
  if (!cmds.empty() && !tx(cmds))
    return unavailable();
  json::writer w;
  w.begin_object().kv("stored", static_cast<uint64_t>(entries->array.size())).end_object();
  return {200, w.take()};
}

/// The four hashes of each job, in one transaction.
store_answer summary(const redis_tx& tx, const std::vector<std::string>& ids, bool series) {
  std::vector<redis_cmd> cmds;
  for (auto& id : ids) {
    cmds.push_back({"HGETALL", keys::job_metrics(id)});
    cmds.push_back({"HGETALL", keys::job_params(id)});
    cmds.push_back({"HGETALL", keys::job_tags(id)});
    cmds.push_back({"HGETALL", keys::job_artifacts(id)});
    cmds.push_back({"HGETALL", keys::job_metric_values(id)});
    if (series)
      cmds.push_back({"LRANGE", keys::job_metric_series(id), "0", "-1"});
  }
  if (cmds.empty())
    return {200, "{}"};
  auto replies = tx(cmds);
  if (!replies || replies->size() != cmds.size())
    return unavailable();
  size_t per = series ? 6 : 5;
  json::writer w;
  if (!series)
    w.begin_object();
  for (size_t j = 0; j < ids.size(); ++j) {
    auto* r = &(*replies)[j * per];
    if (!series)
      w.key(ids[j]);
    w.begin_object().key("metrics");
    hash_object(w, r[0], true);
    w.key("params");
    hash_object(w, r[1], true);
    w.key("tags");
    hash_object(w, r[2], false);
    w.key("artifacts");
    hash_object(w, r[3], true);
    w.key("values").begin_object();
    for (size_t i = 0; i + 1 < r[4].elements.size(); i += 2) {
      w.key(r[4].elements[i].str);
      values_object(w, r[4].elements[i + 1].str);
    }
    w.end_object();
    if (series) {
      // Regroup the points by metric, in logged order: [[step, value, time], ...].
      std::map<std::string, std::vector<std::string>> by_key;
      std::vector<std::string> order;
      for (auto& p : r[5].elements) {
        std::string err;
        auto v = json::parse(p.str, err);
        if (!v)
          continue;
        auto key = v->get_string("key").value_or("");
        auto value = v->find("value");
        auto time = v->find("time");
        json::writer pt;
        pt.begin_array().value(v->get_int("step").value_or(0))
          .raw(value ? value->dump() : "null").raw(time ? time->dump() : "0").end_array();
        if (!by_key.count(key))
          order.push_back(key);
        by_key[key].push_back(pt.take());
      }
      w.key("series").begin_object();
      for (auto& k : order) {
        w.key(k).begin_array();
        for (auto& pt : by_key[k])
          w.raw(pt);
        w.end_array();
      }
      w.end_object();
    }
    w.end_object();
  }
  if (!series)
    w.end_object();
  return {200, w.take()};
}

store_answer project(const redis_tx& tx, const std::string& name) {
  auto replies = tx({{"HGET", keys::project_descriptions, name},
                     {"LRANGE", keys::project_notes(name), "0", "-1"}});
  if (!replies || replies->size() != 2)
    return unavailable();
  json::writer w;
  w.begin_object().kv("name", name).kv("description", (*replies)[0].str).key("notes")
    .begin_array();
  for (auto& n : (*replies)[1].elements)
    w.raw(n.str);
  w.end_array().end_object();
  return {200, w.take()};
}

} // namespace

store_answer run(const redis_tx& tx, const std::string& op, const std::vector<std::string>& a) {
  auto need = [&](size_t n) { return a.size() >= n; };
  if (op == "secret" && need(2)) {
    if (!tx({{"SET", keys::job_secret(a[0]), secret_digest(a[1])}}))
      return unavailable();
    return {200, "true"};
  }
  if (op == "track" && need(3))
    return track(tx, a[0], a[1], a[2]);
  if (op == "check_secret" && need(2)) { // a local run's end (actors/gateway/local_runs.cpp)
    record_facts facts;
    auto refused = secret_refusal(tx, a[0], a[1], facts);
    return refused ? *refused : store_answer{200, "true"};
  }
  if (op == "summary")
    return summary(tx, a, false);
  if (op == "detail" && need(1))
    return summary(tx, {a[0]}, true);
  if (op == "tag" && need(3)) {
    if (a[1].empty() || a[1].size() > max_key_chars)
      return fail(400, "a tag key must be a non-empty string of at most 256 characters");
    if (!tx({{"HSET", keys::job_tags(a[0]), a[1], a[2]}, job_index::bump_version()}))
      return unavailable();
    return {200, "true"};
  }
  if (op == "untag" && need(2)) {
    // Removing an absent tag succeeds, as the original's HDEL did.
    if (!tx({{"HDEL", keys::job_tags(a[0]), a[1]}, job_index::bump_version()}))
      return unavailable();
    return {200, "true"};
  }
  if (op == "project" && need(1))
    return project(tx, a[0]);
  if (op == "describe" && need(2)) {
    if (!tx({{"HSET", keys::project_descriptions, a[0], a[1]}}))
      return unavailable();
    return {200, "true"};
  }
  if (op == "note" && need(4)) {
    json::writer w;
    w.begin_object().kv("date", a[3]).kv("author", a[1]).kv("message", a[2]).end_object();
    if (!tx({{"RPUSH", keys::project_notes(a[0]), w.take()}}))
      return unavailable();
    return {200, "true"};
  }
  return fail(400, "unknown dashboard store operation '" + op + "'");
}

std::vector<std::string> tracking_keys(const std::string& id) {
  return {keys::job_secret(id), keys::job_metrics(id), keys::job_metric_series(id),
          keys::job_metric_values(id), keys::job_params(id), keys::job_tags(id), keys::job_artifacts(id)};
}

std::string new_job_secret() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof(buf)) {
    auto n = ::getrandom(buf + got, sizeof(buf) - got, 0);
    if (n > 0)
      got += static_cast<size_t>(n);
  }
  return hex(buf, sizeof(buf));
}

std::string secret_digest(std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(secret.data(), secret.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

} // namespace atlas::dashboard
