#include "runtime/cli/sweep_submit.hpp"

#include <algorithm>
#include <fstream>
#include <ostream>
#include <random>
#include <sstream>

#include "adapters/http_client.hpp"
#include "library/job_codec.hpp"
#include "runtime/cli/format.hpp"

namespace atlas::cli {

std::optional<sweep_spec> load_sweep(context& ctx, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return ctx.err << "error: --sweep: cannot read " << path << "\n", std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_sweep(text.str(), path);
  if (!parsed.spec)
    return ctx.err << "error: " << parsed.error << "\n", std::nullopt;
  if (parsed.spec->method == "random" && !parsed.spec->has_seed) {
    // Chosen here and printed, so the same trials can be drawn again.
    parsed.spec->seed = std::random_device{}() & ((uint64_t{1} << 31) - 1);
    parsed.spec->has_seed = true;
    ctx.err << "note: " << path << " gives no seed; using seed " << parsed.spec->seed << "\n";
  }
  return parsed.spec;
}

int print_trials(context& ctx, const sweep_spec& spec) {
  auto trials = expand_sweep(spec);
  ctx.out << "Sweep (" << spec.method << "): " << trials.size() << " trials";
  if (spec.max_concurrent > 0)
    ctx.out << ", at most " << spec.max_concurrent << " running at once";
  if (!spec.metric.empty())
    ctx.out << ", best by " << spec.goal << " " << spec.metric;
  ctx.out << "\n";
  for (size_t i = 0; i < trials.size(); ++i)
    ctx.out << "  " << i + 1 << "  " << trials[i] << "\n";
  ctx.out << "(dry run: nothing submitted)" << std::endl;
  return 0;
}

namespace {

/// The stored bundle's SHA-256 after one upload, or "" when the scheduler
/// has no bundle store (an older server: each trial then uploads its own).
std::optional<std::string> upload_once(context& ctx, const submission_config& sc,
                                       const std::string& bundle_path, const progress_fn& progress,
                                       bool& no_store) {
  auto r = http_client::upload_file(sc.scheduler_url + "/api/v1/bundles", "job_bundle", bundle_path,
                                    "bundle.tgz", progress, options(ctx));
  if (progress)
    ctx.err << "\n";
  if (r.error.empty() && (r.status == 404 || r.status == 405)) {
    no_store = true;
    return std::string{};
  }
  if (!r.ok())
    return fail(ctx, r), std::nullopt;
  auto v = json_body(ctx, r);
  if (!v)
    return std::nullopt;
  auto hash = v->get_string("bundle");
  if (!hash || hash->empty())
    return ctx.err << "error: the scheduler's bundle store answered without a bundle hash\n", std::nullopt;
  auto stored = v->find("stored");
  ctx.out << "Bundle " << hash->substr(0, 12) << " (" << v->get_int("size").value_or(0) << " bytes) "
          << (stored && stored->type == json::value::kind::boolean && !stored->boolean ? "already stored"
                                                                                       : "uploaded once")
          << std::endl;
  return *hash;
}

/// `base` (a JSON object, or empty) with `trial`'s values over it.
std::string merged_params(const std::string& base, const std::string& trial) {
  std::string err;
  auto b = base.empty() ? std::nullopt : json::parse(base, err);
  auto t = json::parse(trial, err);
  if (!b || !t || !b->is_object() || !t->is_object())
    return trial;
  for (auto& [key, value] : t->object) {
    auto same = std::find_if(b->object.begin(), b->object.end(), [&](auto& kv) { return kv.first == key; });
    if (same != b->object.end())
      same->second = value;
    else
      b->object.emplace_back(key, value);
  }
  return b->dump();
}

} // namespace

int submit_sweep(context& ctx, const submission_config& sc, const std::string& bundle_path,
                 const sweep_spec& spec, const json::writer& job_fields, const progress_fn& progress,
                 const std::string& base_params) {
  auto trials = expand_sweep(spec);
  bool no_store = false;
  auto hash = upload_once(ctx, sc, bundle_path, progress, no_store);
  if (!hash)
    return 1;
  if (no_store)
    ctx.err << "warning: the scheduler has no bundle store (POST /api/v1/bundles); "
               "uploading the bundle once per trial\n";
  const std::string sweep_id = "sweep-" + new_job_id().substr(0, 8);
  ctx.out << "Sweep '" << sweep_id << "': " << trials.size() << " trials";
  if (spec.max_concurrent > 0)
    ctx.out << ", at most " << spec.max_concurrent << " running at once";
  ctx.out << " (" << sc.scheduler_url << ")" << std::endl;
  size_t submitted = 0;
  for (size_t i = 0; i < trials.size(); ++i) {
    const std::string id = new_job_id();
    if (no_store) {
      auto up = http_client::upload_file(sc.scheduler_url + "/job_bundle", "job_bundle", bundle_path,
                                         id + ".tgz", {}, options(ctx));
      if (!up.ok())
        return fail(ctx, up), ctx.err << "error: sweep '" << sweep_id << "' stopped after " << submitted
                                      << " of " << trials.size() << " trials\n", 1;
    }
    json::writer w = job_fields; // the shared fields; the object is still open
    w.kv("job_id", id).key("params").raw(merged_params(base_params, trials[i])).kv("sweep_id", sweep_id);
    if (spec.max_concurrent > 0)
      w.kv("sweep_limit", spec.max_concurrent);
    if (!no_store)
      w.kv("bundle", *hash);
    w.end_object();
    auto r = http_client::post_json(sc.scheduler_url + "/queued_jobs", w.str(), options(ctx));
    if (!r.ok()) {
      fail(ctx, r);
      ctx.err << "error: sweep '" << sweep_id << "' stopped after " << submitted << " of "
              << trials.size() << " trials\n";
      return 1;
    }
    ++submitted;
    ctx.out << "  trial " << i + 1 << ": job '" << id << "' " << trials[i] << "\n";
  }
  ctx.out << "Sweep '" << sweep_id << "' submitted: " << submitted << " jobs" << std::endl;
  return 0;
}

} // namespace atlas::cli
