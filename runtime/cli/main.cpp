// `foundations`: the user's CLI. This file parses the command line (flags,
// help, usage errors) and holds the commands that need no scheduler; the
// others are in commands.cpp and jobs.cpp.

#include "runtime/cli/commands.hpp"
#include "library/config.hpp"
#include "runtime/credentials.hpp"
#include "runtime/version.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>

namespace atlas::cli {
namespace {

namespace fs = std::filesystem;

struct flag_spec {
  std::string name;       // long name without "--", words joined by '-'
  std::string value_name; // empty: a switch without value
  std::string help;
  bool repeatable = false; // given again, its values are joined with ','
};

struct command_spec {
  std::string name;  // "submit", "get logs"
  std::string usage; // what follows "foundations " in the usage line
  std::string summary;
  std::vector<flag_spec> flags;
  size_t min_args;
  size_t max_args;   // SIZE_MAX: every word after min_args is an argument, even "--x"
  int (*run)(context&, const args&);
};

const std::vector<flag_spec>& submit_flags() {
  static const std::vector<flag_spec> flags = {
      {"entrypoint", "E", "run E instead of python3"},
      {"project-name", "P", "project name (default: project_name in job.config.yaml, else the directory's name)"},
      {"num-gpus", "N", "GPUs for the job (default 0)"},
      {"ram", "GB", "memory limit in GB (fractions allowed: 1.5)"},
      {"memory", "SIZE", "memory limit as a size: 64M, 1.5g (instead of --ram)"},
      {"cpus", "N", "CPUs the job needs (fractions allowed: 0.5)"},
      {"time", "T", "run time limit: seconds (120), 90s, 30m, 2h or [H:]MM:SS (default: time_limit in job.config.yaml)"},
      {"after", "ID[:WHEN]", "start only once job ID ended: ok (completed, the default), failed or any; repeat or comma-separate", true},
      {"priority", "N", "queue priority, higher first (default 0)"},
      {"stream-job-logs", "True|False", "follow the job's logs until it ends (default True)"}};
  return flags;
}

std::vector<flag_spec> submit_command_flags() {
  auto flags = submit_flags();
  flags.push_back({"sweep", "FILE", "submit a hyperparameter sweep: one job per trial of FILE (YAML)"});
  flags.push_back({"dry-run", "", "with --sweep: print the trials, submit nothing"});
  return flags;
}

std::vector<flag_spec> schedule_create_flags() {
  std::vector<flag_spec> flags = {
    {"cron", "EXPR", "when to run, in UTC: \"m h dom mon dow\", an optional leading second field, or @hourly, @daily..."}};
  for (auto& f : submit_flags())
    if (f.name != "stream-job-logs")
      flags.push_back(f);
  return flags;
}

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> all = {
    {"init", "init <project>", "Create a new project directory with an example job.", {}, 1, 1, init},
    {"submit",
     "submit [--entrypoint E] [--project-name P] [--num-gpus N] [--ram GB] [--memory SIZE] [--cpus N] "
     "[--time T] [--after ID[:ok|:any|:failed]]... [--priority N] [--stream-job-logs True|False] "
     "[--sweep FILE [--dry-run]] <env> <dir> [command...]",
     "Pack <dir>, submit it to the scheduler of submission/<env>.config.yaml and follow its logs.\n"
     "The command (default: main.py) runs as `python3 <command...>` in the job's copy of <dir>;\n"
     "every word after <dir> belongs to it. With --sweep, one job per trial of the sweep file\n"
     "(README: Sweeps), sharing one upload of the bundle.",
     submit_command_flags(), 2, SIZE_MAX, submit},
    {"schedule create", "schedule create --cron EXPR [submit's flags] <env> <dir> [command...]",
     "Pack <dir> and create a scheduled job: a run of it is submitted at every time EXPR names (UTC).",
     schedule_create_flags(), 2, SIZE_MAX, schedule_create},
    {"schedule list", "schedule list <env> [--project P]", "List the scheduled jobs.",
     {{"project", "P", "only this project's"}}, 1, 1, schedule_list},
    {"schedule pause", "schedule pause <env> <id>", "Pause a scheduled job.", {}, 2, 2, schedule_pause},
    {"schedule resume", "schedule resume <env> <id>", "Resume a paused scheduled job (missed runs are not made up).",
     {}, 2, 2, schedule_resume},
    {"schedule update", "schedule update <env> <id> --cron EXPR", "Give a scheduled job a new schedule.",
     {{"cron", "EXPR", "the new schedule (UTC)"}}, 2, 2, schedule_update},
    {"schedule delete", "schedule delete <env> <id>", "Delete a scheduled job (its runs stay).", {}, 2, 2,
     schedule_delete},
    {"get logs", "get logs <env> <id> [--follow]", "Print a job's logs.",
     {{"follow", "", "keep printing as the log grows, until the job ends"}}, 2, 2, get_logs},
    {"get job", "get job <env> <id> [--save_dir D] [--source_dir S]", "Download a job's artifacts into D/<id>/.",
     {{"save-dir", "D", "where to save (default: the current directory)"},
      {"source-dir", "S", "only the folder S of the artifacts (a path inside them)"}}, 2, 2, get_job},
    {"tensorboard", "tensorboard <env> <id>... [--save_dir D]",
     "Download the jobs' TensorBoard files into D/<id>/ (default D: ./tensorboard) and run\n"
     "`tensorboard --logdir D` when TensorBoard is installed, else print that command.",
     {{"save-dir", "D", "where to put them (default: ./tensorboard)"}}, 2, 257, tensorboard},
    {"stop", "stop <env> <id> | stop <env> --sweep <sweep_id>",
     "Stop a running job (or cancel a queued one). With --sweep, every queued and running\n"
     "trial of the sweep (its id as `foundations submit --sweep` printed it).",
     {{"sweep", "SWEEP_ID", "stop every trial of this sweep that has not ended"}}, 1, 2, stop},
    {"clear-queue", "clear-queue <env>", "Remove every queued job.", {}, 1, 1, clear_queue},
    {"delete job", "delete job <env> <id>", "Delete a finished job and its data.", {}, 2, 2, delete_job},
    {"list", "list <env> [--limit N]", "List the cluster's newest jobs (100 unless --limit says), newest first.",
     {{"limit", "N", "how many (1 to 1000)"}}, 1, 1, list},
    {"login", "login <env|scheduler_url> [-u USER] [-p PASSWORD]",
     "Log in (atlas-server -p); the token is kept in $FOUNDATIONS_HOME/credentials.yaml.\n"
     "Prompts for what is not given (the password without echo). FOUNDATIONS_TOKEN overrides it.",
     {{"username", "USER", "user name (-u)"}, {"password", "PASSWORD", "password (-p)"}}, 1, 1, login},
    {"logout", "logout", "Revoke and forget the stored login.", {}, 0, 0, logout},
    {"info", "info --env", "List the environments (submission/<env>.config.yaml in $FOUNDATIONS_HOME/config).",
     {{"env", "", "list the environments"}}, 0, 0, info},
  };
  return all;
}

void print_overview(std::ostream& o) {
  o << "usage: foundations <command> [arguments]\n\nCommands:\n";
  for (const auto& c : commands())
    o << "  " << std::left << std::setw(17) << c.name << c.summary.substr(0, c.summary.find('\n')) << "\n";
  o << "\n<env> names $FOUNDATIONS_HOME/config/submission/<env>.config.yaml (its scheduler_url).\n"
       "Run 'foundations <command> --help' for a command's flags.\n";
}

void print_help(std::ostream& o, const command_spec& c) {
  o << "usage: foundations " << c.usage << "\n\n" << c.summary << "\n";
  if (!c.flags.empty())
    o << "\nFlags:\n";
  for (const auto& f : c.flags) {
    std::string left = "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
    o << "  " << std::left << std::setw(30) << left << f.help << "\n";
  }
}

int usage_error(const command_spec* c, const std::string& message) {
  std::cerr << "error: " << message << "\n";
  if (c)
    std::cerr << "usage: foundations " << c->usage << "\n";
  else
    std::cerr << "usage: foundations <command> [arguments]  (foundations --help lists them)\n";
  return 2;
}

/// Parses the words after the command name. Returns -1 to go on, else an exit code.
int parse(const command_spec& c, const std::vector<std::string>& words, args& out) {
  bool only_args = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    bool rest = c.max_args == SIZE_MAX && out.positional.size() >= c.min_args;
    if (only_args || rest || w.size() < 2 || w[0] != '-') {
      out.positional.push_back(w);
      continue;
    }
    if (w == "--") {
      only_args = true;
      continue;
    }
    if (w == "-h" || w == "--help")
      return print_help(std::cout, c), 0;
    if (c.name == "login" && (w == "-u" || w == "-p")) {
      if (i + 1 >= words.size())
        return usage_error(&c, w + " needs a value");
      out.flags[w == "-u" ? "username" : "password"] = words[++i];
      continue;
    }
    if (w.rfind("--", 0) != 0)
      return usage_error(&c, "unknown flag '" + w + "'");
    std::string name = w.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    std::replace(name.begin(), name.end(), '_', '-');
    auto f = std::find_if(c.flags.begin(), c.flags.end(), [&](const flag_spec& s) { return s.name == name; });
    if (f == c.flags.end())
      return usage_error(&c, "unknown flag '--" + name + "'");
    if (f->value_name.empty() && has_value)
      return usage_error(&c, "--" + name + " takes no value");
    if (!f->value_name.empty() && !has_value) {
      if (i + 1 >= words.size())
        return usage_error(&c, "--" + name + " needs a value (" + f->value_name + ")");
      value = words[++i];
    }
    if (f->repeatable && out.has(name))
      value = out.flags[name] + "," + value;
    out.flags[name] = value;
  }
  if (out.positional.size() < c.min_args)
    return usage_error(&c, "missing arguments");
  if (out.positional.size() > c.max_args)
    return usage_error(&c, "unexpected argument '" + out.positional[c.max_args] + "'");
  return -1;
}

} // namespace

/// `info --env`: every environment a submission can name, and its scheduler.
int info(context& ctx, const args& a) {
  if (!a.flags.count("env")) {
    ctx.err << "foundations info: expected --env\n";
    return 2;
  }
  std::map<std::string, std::string> envs; // name -> file, sorted by name
  std::error_code ec;
  for (auto& e : fs::directory_iterator(fs::path(ctx.home) / "config" / "submission", ec)) {
    auto name = e.path().filename().string();
    const std::string suffix = ".config.yaml";
    if (name.size() > suffix.size() && name.ends_with(suffix))
      envs[name.substr(0, name.size() - suffix.size())] = e.path().string();
  }
  if (envs.empty()) {
    ctx.out << "No environments: add " << ctx.home << "/config/submission/<env>.config.yaml "
            << "(scheduler_url: http://<master>:5558)\n";
    return 0;
  }
  size_t width = 11;
  for (auto& [name, file] : envs)
    width = std::max(width, name.size() + 2);
  ctx.out << std::left << std::setw(static_cast<int>(width)) << "environment" << "file\n";
  for (auto& [name, file] : envs)
    ctx.out << std::left << std::setw(static_cast<int>(width)) << name << file << "\n";
  return 0;
}

int init(context& ctx, const args& a) {
  fs::path dir = fs::path(a.positional.at(0)).lexically_normal();
  if (dir.has_filename() == false)
    dir = dir.parent_path();
  const std::string project = dir.filename().string();
  std::error_code ec;
  if (project.empty() || project == "." || project == "..")
    return ctx.err << "error: '" << a.positional[0] << "' is not a project name\n", 2;
  if (fs::exists(fs::symlink_status(dir, ec)))
    return ctx.err << "error: " << dir.string() << " already exists\n", 1;
  if (!fs::create_directories(dir, ec) || ec)
    return ctx.err << "error: cannot create " << dir.string() << ": " << ec.message() << "\n", 1;
  const std::pair<const char*, std::string> files[] = {
    {"main.py",
     "\"\"\"An example Atlas job: prints its progress and writes a small result file.\"\"\"\n\n"
     "import os\nimport time\n\n\n"
     "def main():\n"
     "    print(\"Hello from " + project + "!\", flush=True)\n"
     "    total = 0\n"
     "    for step in range(1, 4):\n"
     "        total += step\n"
     "        print(f\"step {step}: total = {total}\", flush=True)\n"
     "        time.sleep(1)\n"
     "    os.makedirs(\"outputs\", exist_ok=True)\n"
     "    with open(os.path.join(\"outputs\", \"result.txt\"), \"w\") as f:\n"
     "        f.write(f\"total = {total}\\n\")\n"
     "    print(\"done\", flush=True)\n\n\n"
     "if __name__ == \"__main__\":\n    main()\n"},
    {"job.config.yaml", "project_name: " + project + "\nlog_level: INFO\n"},
    {"README.md",
     "# " + project + "\n\n"
     "An Atlas project. `main.py` is the job; `job.config.yaml` names the project.\n\n"
     "Submit it to the cluster named by `$FOUNDATIONS_HOME/config/submission/remote.config.yaml`:\n\n"
     "    foundations submit remote " + project + " main.py\n\n"
     "Then `foundations list remote`, `foundations get logs remote <job id>`,\n"
     "`foundations get job remote <job id>` to download what the job saved.\n"},
  };
  for (const auto& [name, text] : files) {
    std::ofstream f(dir / name);
    if (!(f << text) || !(f.close(), f))
      return ctx.err << "error: cannot write " << (dir / name).string() << "\n", 1;
  }
  ctx.out << "Created project '" << project << "' in " << dir.string() << std::endl;
  return 0;
}

} // namespace atlas::cli

int main(int argc, char** argv) {
  using namespace atlas::cli;
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty())
    return usage_error(nullptr, "no command given");
  if (words[0] == "-h" || words[0] == "--help" || words[0] == "help")
    return print_overview(std::cout), 0;
  if (words[0] == "--version" || words[0] == "version")
    return std::cout << "foundations " << atlas::atlas_version << "\n", 0;
  const command_spec* found = nullptr;
  size_t used = 1;
  for (const auto& c : commands()) {
    auto space = c.name.find(' ');
    if (space == std::string::npos && words[0] == c.name) {
      found = &c;
    } else if (space != std::string::npos && words[0] == c.name.substr(0, space)) {
      if (words.size() > 1 && words[1] == c.name.substr(space + 1))
        found = &c, used = 2;
    }
    if (found)
      break;
  }
  if (!found) {
    if (words[0] == "get" || words[0] == "delete" || words[0] == "schedule") {
      std::string expected = words[0] == "get"        ? "'logs' or 'job'"
                             : words[0] == "schedule" ? "list, create, pause, resume, update or delete"
                                                      : "'job'";
      std::string got = words.size() > 1 ? "'" + words[1] + "'" : "nothing";
      return usage_error(nullptr, "foundations " + words[0] + ": expected " + expected + ", got " + got);
    }
    return usage_error(nullptr, "unknown command '" + words[0] + "'");
  }
  args a;
  if (int rc = parse(*found, {words.begin() + static_cast<long>(used), words.end()}, a); rc >= 0)
    return rc;
  context ctx{atlas::current_environment(), "", "None", std::cout, std::cerr, isatty(2) == 1};
  ctx.home = atlas::foundations_home(ctx.env);
  ctx.token = atlas::bearer_for_cli(ctx.env, ctx.home);
  return found->run(ctx, a);
}
