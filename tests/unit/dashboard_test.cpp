#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "library/tracking/env.hpp"
#include "library/tracking/metric_values.hpp"
#include "library/tracking/sweep_view.hpp"
#include "library/tracking/views.hpp"
#include "library/dashboard_static.hpp"
#include "library/http_answers.hpp"

using namespace atlas;
namespace fs = std::filesystem;

namespace {

job_record job(std::string id, job_state s, double queued) {
  job_record r;
  r.job_id = std::move(id);
  r.project_name = "p";
  r.username = "ann";
  r.state = s;
  r.queued_time = queued;
  return r;
}

json::value parse(const std::string& text) {
  std::string err;
  auto v = json::parse(text, err);
  REQUIRE(v);
  return *v;
}

std::vector<std::string> ids(const std::string& listing) {
  std::vector<std::string> out;
  auto doc = parse(listing);
  for (auto& j : doc.find("jobs")->array)
    out.push_back(*j.get_string("job_id"));
  return out;
}

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("atlas-dash-" + std::to_string(::getpid()));
  temp_dir() { fs::create_directories(path / "web" / "sub"); }
  ~temp_dir() { fs::remove_all(path); }
  void write(const fs::path& rel, const std::string& text) {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << text;
  }
};

} // namespace

TEST_CASE("the job's environment carries the secret, the API and the SDK", "[dashboard]") {
  node_config cfg;
  cfg.host_address = "http://10.0.0.5:5000/";
  cfg.sdk_dir = "/opt/atlas/sdk/python";
  auto rec = job("j1", job_state::pending, 1);
  rec.job_secret = "s3cret";
  std::map<std::string, std::string> env{{"PYTHONPATH", "/mine"}};
  add_tracking_env(cfg, rec, env);
  CHECK(env["ATLAS_JOB_SECRET"] == "s3cret");
  CHECK(env["ATLAS_API_URL"] == "http://10.0.0.5:5000");
  CHECK(env["PYTHONPATH"] == "/opt/atlas/sdk/python:/mine");
}

TEST_CASE("the job listing sorts by a metric with jobs lacking it last, and filters", "[dashboard]") {
  std::vector<job_record> recs{job("a", job_state::completed, 1), job("b", job_state::running, 2),
                               job("c", job_state::completed, 3)};
  auto summary = parse(R"({"a":{"metrics":{"loss":{"value":0.5,"step":9}},"params":{"lr":0.25},
                               "tags":{"best":""},"artifacts":{}},
                           "c":{"metrics":{"loss":{"value":0.2,"step":9}},"params":{},"tags":{},
                               "artifacts":{"plot":{"path":"p.png","size":3}}}})");
  std::string err;
  auto listing = [&](std::map<std::string, std::string> q) {
    auto out = dashboard::job_listing_json("p", recs, summary, q, 10, err);
    REQUIRE(err.empty());
    return out;
  };
  CHECK(ids(listing({})) == std::vector<std::string>{"c", "b", "a"}); // newest first
  CHECK(ids(listing({{"sort", "metric:loss"}})) == std::vector<std::string>{"c", "a", "b"});
  CHECK(ids(listing({{"sort", "-metric:loss"}})) == std::vector<std::string>{"a", "c", "b"});
  CHECK(ids(listing({{"status", "completed"}})) == std::vector<std::string>{"c", "a"});
  CHECK(ids(listing({{"tag", "best"}})) == std::vector<std::string>{"a"});
  CHECK(ids(listing({{"limit", "1"}})) == std::vector<std::string>{"c"});
  auto doc = parse(listing({{"job_id", "a"}}));
  auto& a = doc.find("jobs")->array.at(0);
  CHECK(a.find("output_metrics")->array.at(0).dump() == R"({"name":"loss","value":0.5,"type":"number","step":9,"latest":0.5,"count":1})");
  CHECK(a.find("job_parameters")->array.at(0).dump() == R"({"name":"lr","value":0.25,"type":"number"})");
  CHECK(a.find("tags")->dump() == R"({"best":""})");
  CHECK(doc.find("output_metric_names")->dump() == R"([{"name":"loss","type":"number"}])");
  auto cdoc = parse(listing({{"job_id", "c"}}));
  auto& c = cdoc.find("jobs")->array.at(0);
  CHECK(c.find("artifacts")->array.at(0).get_string("artifact_type") == "image");
  CHECK(c.find("artifacts")->array.at(0).get_string("uri")
        == "/api/v2beta/projects/p/job_listing/c/artifacts/plot");
  dashboard::job_listing_json("p", recs, summary, {{"sort", "colour"}}, 10, err);
  CHECK(err.find("unknown column 'colour'") != std::string::npos);
  err.clear();
  dashboard::job_listing_json("p", recs, summary, {{"colour", "red"}}, 10, err);
  CHECK(err.find("unknown column 'colour'") != std::string::npos);
  err.clear();
}

TEST_CASE("the listing's shapes are the original's: value lists, types, times, artifacts",
          "[dashboard]") {
  std::vector<job_record> recs{job("a", job_state::completed, 1.5), job("b", job_state::queued, 2)};
  recs[0].start_time = 2;
  std::string long_text(150, 'x');
  auto summary = parse(R"({"a":{"metrics":{"loss":{"value":0.25,"step":2},"acc":{"value":0.5,"step":0},
                                           "note":{"value":")" + long_text + R"(","step":0}},
                               "values":{"loss":{"count":103,"values":[0.75,0.5,0.25]},
                                         "acc":{"count":1,"values":[0.5]}},
                               "params":{"layers":[3,4],"opt":{"name":"sgd"},"none":null},
                               "tags":{},
                               "artifacts":{"song":{"path":"out/a.MP3","size":5},
                                            "pic":{"path":"p.png","size":3},
                                            "weights":{"path":"w.bin","size":1},
                                            "bare":{"path":"dir.d/README","size":1}}},
                           "b":{"metrics":{"loss":{"value":0.1,"step":0}},"values":{},"params":{},
                                "tags":{},"artifacts":{}}})");
  std::string err;
  auto doc = parse(dashboard::job_listing_json("p", recs, summary, {{"sort", "metric:loss"}}, 10, err));
  REQUIRE(err.empty());
  // Sorting by a metric uses its latest value (0.1 < 0.25).
  CHECK(ids(doc.dump()) == std::vector<std::string>{"b", "a"});
  auto& a = doc.find("jobs")->array.at(1);
  std::map<std::string, json::value> m;
  for (auto& e : a.find("output_metrics")->array)
    m[*e.get_string("name")] = e;
  // Logged several times: the list (the last ones kept), as the original; once: the scalar.
  CHECK(m["loss"].dump() == R"({"name":"loss","value":[0.75,0.5,0.25],"type":"array number","step":2,"latest":0.25,"count":103})");
  CHECK(m["acc"].dump() == R"({"name":"acc","value":0.5,"type":"number","step":0,"latest":0.5,"count":1})");
  CHECK(m["note"].get_string("value") == std::string(100, 'x')); // cut as the original did
  CHECK(m["note"].find("latest")->string.size() == 150);
  std::map<std::string, std::string> types;
  for (auto& p : a.find("job_parameters")->array)
    types[*p.get_string("name")] = *p.get_string("type");
  CHECK(types == std::map<std::string, std::string>{{"layers", "array number"}, {"opt", "unknown"},
                                                    {"none", "unknown"}});
  auto names = doc.find("output_metric_names")->dump();
  CHECK(names.find(R"({"name":"loss","type":"number"})") != std::string::npos); // b's, seen first
  CHECK(a.find("creation_time")->number == 1.5); // seconds, as the original's
  // UTC without a zone, as Python's isoformat() wrote it; microseconds when there are some.
  CHECK(a.get_string("start_time") == "1970-01-01T00:00:02");
  json::writer t;
  t.begin_array();
  dashboard::naive_utc_time_value(t, 1767225600.25);
  dashboard::naive_utc_time_value(t, 59.9999999);
  dashboard::naive_utc_time_value(t, 0);
  t.end_array();
  CHECK(t.take() == R"(["2026-01-01T00:00:00.250000","1970-01-01T00:01:00",null])");
  CHECK(doc.find("jobs")->array.at(0).find("duration")->is_null()); // not started
  std::map<std::string, json::value> arts;
  for (auto& e : a.find("artifacts")->array)
    arts[*e.get_string("archive_key")] = e;
  CHECK(arts["song"].dump() == R"({"filename":"a.MP3","archive_key":"song","artifact_type":"audio",)"
                               R"("uri":"/api/v2beta/projects/p/job_listing/a/artifacts/song",)"
                               R"("key":"song","path":"out/a.MP3","size":5})");
  CHECK(arts["pic"].get_string("artifact_type") == "image");
  CHECK(arts["weights"].get_string("artifact_type") == "unknown");
  CHECK(arts["bare"].get_string("artifact_type") == "unknown");
}

TEST_CASE("notes come back in the original's shape with the time as ours", "[dashboard]") {
  auto notes = parse(R"([{"date":"1767323045.5","author":"ann","message":"hi"},
                         {"date":1767323045,"author":"bo","message":"yo"}])");
  CHECK(dashboard::notes_json(notes)
        == R"([{"date":"2026-01-02 03:04:05.500000","message":"hi","author":"ann","time":1767323045.5},)"
           R"({"date":"2026-01-02 03:04:05","message":"yo","author":"bo","time":1767323045}])");
}

TEST_CASE("a metric's value list keeps its count and the last values", "[dashboard]") {
  auto cap = dashboard::max_listed_metric_values;
  CHECK(dashboard::appended_values("", {"1", "\"a\\nb\""}) == "2\n1\n\"a\\nb\"");
  CHECK(dashboard::appended_values("2\n1\n2", {"3"}) == "3\n1\n2\n3");
  std::vector<std::string> many;
  for (size_t i = 0; i < cap + 2; ++i)
    many.push_back(std::to_string(i));
  auto entry = dashboard::appended_values("5\n9", many);
  json::writer w;
  dashboard::values_object(w, entry);
  auto doc = parse(w.take());
  CHECK(doc.get_int("count") == static_cast<int64_t>(cap + 7));
  auto& kept = doc.find("values")->array;
  REQUIRE(kept.size() == cap);
  CHECK(kept.front().integer == 2);
  CHECK(kept.back().integer == static_cast<int64_t>(cap + 1));
}

TEST_CASE("the job listing takes the original's filters and multi-column sorts", "[dashboard]") {
  std::vector<job_record> recs{job("a", job_state::completed, 1), job("b", job_state::running, 2),
                               job("c", job_state::completed, 3), job("d", job_state::queued, 4)};
  recs[0].username = "ann";
  recs[1].username = "bob";
  recs[2].username = "ann";
  recs[3].username = "Annika";
  auto summary = parse(R"({"a":{"metrics":{"loss":{"value":0.5}},"params":{"lr":0.25}},
                           "b":{"metrics":{"loss":{"value":0.5}},"params":{"lr":0.5}},
                           "c":{"metrics":{"loss":{"value":0.2}},"params":{"lr":0.25}}})");
  std::string err;
  auto listing = [&](std::map<std::string, std::string> q) {
    auto out = dashboard::job_listing_json("p", recs, summary, q, 10, err);
    REQUIRE(err.empty());
    return ids(out);
  };
  using v = std::vector<std::string>;
  CHECK(listing({{"user", "ann,bob"}, {"sort", "job_id"}}) == v{"a", "b", "c"});
  CHECK(listing({{"user_contains", "ANN"}, {"sort", "job_id"}}) == v{"a", "c", "d"});
  CHECK(listing({{"lr", "0.25"}, {"sort", "job_id"}}) == v{"a", "c"}); // a bare parameter name
  CHECK(listing({{"loss_starts", "0.1"}, {"loss_ends", "0.4"}}) == v{"c"});
  CHECK(listing({{"loss_isnull", "true"}}) == v{"d"});
  CHECK(listing({{"metric:loss_isnull", "false"}, {"sort", "job_id"}}) == v{"a", "b", "c"});
  // First column decides; ties broken by the next.
  CHECK(listing({{"sort", "loss,-job_id"}}) == v{"c", "b", "a", "d"});
  CHECK(listing({{"sort", "-lr,job_id"}}) == v{"b", "a", "c", "d"});
  dashboard::job_listing_json("p", recs, summary, {{"loss_starts", "0.1"}}, 10, err);
  CHECK(err.find("go together") != std::string::npos);
  err.clear();
  dashboard::job_listing_json("p", recs, summary, {{"loss_isnull", "maybe"}}, 10, err);
  CHECK(err.find("true or false") != std::string::npos);
  err.clear();
  // Durations are null before a job starts, as the original answered.
  auto doc = parse(dashboard::job_listing_json("p", recs, summary, {{"job_id", "d"}}, 10, err));
  CHECK(doc.find("jobs")->array.at(0).find("duration")->is_null());
}

TEST_CASE("the cluster view counts busy and free slots and the queue", "[dashboard]") {
  node_view n;
  n.info.node_id = "n1";
  n.role = "master";
  n.last_seen = 95;
  slot_info busy, free;
  busy.key = "n1/0";
  busy.current_job = "j1";
  busy.gpus = {"0"};
  free.key = "n1/1";
  free.index = 1;
  n.slots = {busy, free};
  queue_entry q{job("j2", job_state::queued, 5), 0, "no free slot"};
  auto doc = parse(dashboard::cluster_json({n}, {q}, 100));
  CHECK(doc.find("totals")->dump()
        == R"({"nodes":1,"slots":2,"busy":1,"free":1,"gpus":1,"queue_depth":1})");
  CHECK(doc.find("nodes")->array.at(0).find("heartbeat_age_s")->number == 5);
  CHECK(doc.find("queue")->array.at(0).get_string("reason") == "no free slot");
}

TEST_CASE("static files get their content type and never leave the web folder", "[dashboard]") {
  temp_dir t;
  t.write("web/index.html", "<h1>hi</h1>");
  t.write("web/sub/app.js", "1;");
  t.write("secret.txt", "outside");
  fs::create_symlink(t.path / "secret.txt", t.path / "web" / "link.txt");
  auto web = (t.path / "web").string();
  auto index = serve_static(web, "/");
  CHECK(index.status == 200);
  CHECK(index.body == "<h1>hi</h1>");
  CHECK(index.content_type == "text/html; charset=utf-8");
  CHECK(serve_static(web, "/sub/app.js").content_type == "application/javascript; charset=utf-8");
  for (auto bad : {"/../secret.txt", "/sub/../../secret.txt", "/link.txt", "/.hidden", "/nope"}) {
    auto r = serve_static(web, bad);
    INFO(bad);
    CHECK((r.status == 400 || r.status == 404));
    CHECK(r.body.find("outside") == std::string::npos);
  }
  CHECK(serve_artifact({web}, "link.txt").status == 404);
  CHECK(serve_artifact({web}, "../secret.txt").status == 404);
  CHECK(serve_artifact({web + "/missing", web}, "sub/app.js").status == 200);
  CHECK(content_type_of("a.PNG") == "image/png");
  CHECK(content_type_of("a.bin") == "application/octet-stream");
}

TEST_CASE("a build folder anywhere finds the page and the SDK of its sources", "[dashboard]") {
  temp_dir t;
  t.write("src/web/index.html", "<h1>hi</h1>");
  t.write("src/sdk/python/foundations/__init__.py", "");
  t.write("elsewhere/build/build.ninja", "");
  t.write("elsewhere/build/atlas-source-root.txt", (t.path / "src").string() + "\n");
  t.write("elsewhere/build/tests/.keep", "");
  node_config cfg;
  resolve_dashboard_dirs(cfg, (t.path / "elsewhere" / "build" / "tests").string());
  CHECK(cfg.web_dir == (t.path / "src" / "web").string());
  CHECK(cfg.sdk_dir == (t.path / "src" / "sdk" / "python").string());
}

TEST_CASE("a sweep's view lists its trials with params and metrics and marks the best",
          "[dashboard][sweep]") {
  std::vector<job_record> recs;
  for (int i = 0; i < 3; ++i) {
    auto r = job("t" + std::to_string(i), job_state::completed, 100.0 + i);
    r.seq = static_cast<uint64_t>(i + 1);
    r.sweep_id = "sw1";
    r.sweep_limit = 2;
    r.params = R"({"lr":)" + std::to_string(i + 1) + "}";
    r.metadata = R"({"sweep_metric":"loss","sweep_goal":"minimize"})";
    recs.push_back(r);
  }
  recs.push_back(job("plain", job_state::running, 50));
  auto summary = parse(R"({"t0":{"metrics":{"loss":{"value":0.5}}},"t1":{"metrics":{"loss":{"value":0.2}}},)"
                       R"("t2":{"metrics":{"loss":{"value":0.9}}}})");
  auto v = parse(dashboard::sweep_json("sw1", recs, summary, 200));
  CHECK(v.get_string("best") == "t1");
  CHECK(v.get_int("trial_count") == 3);
  CHECK(v.get_int("completed") == 3);
  CHECK(v.get_int("max_concurrent") == 2);
  REQUIRE(v.find("trials")->array.size() == 3);
  auto& second = v.find("trials")->array[1];
  CHECK(second.find("params")->get_int("lr") == 2);
  CHECK(second.find("best")->boolean);
  CHECK(v.find("param_names")->array.at(0).string == "lr");
  CHECK(v.find("metric_names")->array.at(0).string == "loss");
  recs[0].metadata = R"({"sweep_metric":"loss","sweep_goal":"maximize"})";
  CHECK(parse(dashboard::sweep_json("sw1", recs, summary, 200)).get_string("best") == "t2");

  auto list = parse(dashboard::sweeps_json(recs));
  REQUIRE(list.array.size() == 1);
  CHECK(list.array[0].get_string("sweep_id") == "sw1");
  CHECK(list.array[0].get_int("trials") == 3);
  CHECK(list.array[0].get_string("goal") == "maximize");
}

TEST_CASE("GET /completed_jobs?sort= sorts once per field, as the original did", "[dashboard]") {
  std::vector<job_record> recs(3);
  recs[0].job_id = "a"; recs[0].start_time = 30; recs[0].username = "bob";
  recs[1].job_id = "b"; recs[1].start_time = 10; recs[1].username = "ann";
  recs[2].job_id = "c"; recs[2].start_time = 20; recs[2].username = "bob";
  std::string error;
  auto order = [&](std::string_view sort) {
    auto text = records_sorted(recs, sort, error);
    REQUIRE(text);
    std::string ids;
    for (size_t at = text->find("[\""); at != std::string::npos; at = text->find("[\"", at + 1))
      ids += text->substr(at + 2, 1);
    return ids;
  };
  CHECK(order("start_time") == "bca");
  CHECK(order("start_time:desc") == "acb");
  // The last field decides first; the earlier ones break its ties.
  CHECK(order("start_time:desc,username") == "bac");
  CHECK_FALSE(records_sorted(recs, "no_such_field", error));
  CHECK(error == "Bad sort request in ['no_such_field', 'asc']");
  CHECK_FALSE(records_sorted(recs, "start_time:sideways", error));
}
