#include "library/cron.hpp"

#include <array>
#include <cctype>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <vector>

namespace atlas::cron {

namespace {

// --- UTC civil time without the C library's time zone (H. Hinnant's algorithms)

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct civil {
  int64_t year;
  unsigned month, day, hour, minute, second, weekday; // weekday 0 = Sunday
};

civil to_civil(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  civil c{};
  c.hour = static_cast<unsigned>(secs / 3600);
  c.minute = static_cast<unsigned>(secs / 60 % 60);
  c.second = static_cast<unsigned>(secs % 60);
  c.weekday = static_cast<unsigned>(((days % 7) + 11) % 7); // 1970-01-01 was a Thursday
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = static_cast<int64_t>(yoe) + era * 400 + (c.month <= 2);
  return c;
}

int64_t to_epoch(int64_t y, unsigned m, unsigned d, unsigned hh = 0, unsigned mm = 0) {
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60;
}

// --- fields

struct field_spec {
  const char* name;
  int min;
  int max;
  const char* const* names; // index = value - names_base
  int names_base;
};

constexpr const char* month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
constexpr const char* day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};

constexpr field_spec specs[6] = {
  {"second", 0, 59, nullptr, 0},     {"minute", 0, 59, nullptr, 0},
  {"hour", 0, 23, nullptr, 0},       {"day-of-month", 1, 31, nullptr, 0},
  {"month", 1, 12, month_names, 1},  {"day-of-week", 0, 7, day_names, 0},
};

std::optional<int> value_of(std::string_view s, const field_spec& f) {
  if (s.empty())
    return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000)
        return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  if (f.names == nullptr || s.size() != 3)
    return std::nullopt;
  for (int i = 0; f.names[i] != nullptr; ++i) {
    bool same = true;
    for (size_t k = 0; k < 3; ++k)
      same = same && std::toupper(static_cast<unsigned char>(s[k])) == f.names[i][k];
    if (same)
      return i + f.names_base;
  }
  return std::nullopt;
}

/// Sets the bits of one field (bit index = value); false with `error`.
bool parse_field(std::string_view text, const field_spec& f, std::vector<bool>& bits,
                 std::string& error) {
  auto bad = [&](std::string_view why) {
    error = std::string("bad ") + f.name + " field '" + std::string(text) + "': " + std::string(why);
    return false;
  };
  bits.assign(static_cast<size_t>(f.max) + 1, false);
  if (text.empty())
    return bad("empty");
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty())
      return bad("empty list item");
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      auto s = value_of(item.substr(slash + 1), field_spec{f.name, 0, 0, nullptr, 0});
      if (!s || *s < 1 || *s > f.max + 1)
        return bad("the step must be a number from 1 to " + std::to_string(f.max + 1));
      step = *s;
      item = item.substr(0, slash);
    }
    int lo = f.min;
    int hi = f.max;
    if (item == "*") {
      // all of them
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
      auto a = value_of(item.substr(0, dash), f);
      auto b = value_of(item.substr(dash + 1), f);
      if (!a || !b)
        return bad("expected a range of two values");
      lo = *a;
      hi = *b;
      if (lo > hi)
        return bad("a range goes from low to high");
    } else {
      auto a = value_of(item, f);
      if (!a)
        return bad("expected *, a number" + std::string(f.names ? " or a name" : ""));
      lo = *a;
      if (step == 1)
        hi = *a;
    }
    if (lo < f.min || hi > f.max)
      return bad("values go from " + std::to_string(f.min) + " to " + std::to_string(f.max));
    for (int v = lo; v <= hi; v += step)
      bits[static_cast<size_t>(v)] = true;
  }
  return true;
}

template <size_t N>
void copy_bits(const std::vector<bool>& from, std::bitset<N>& to) {
  for (size_t i = 0; i < N && i < from.size(); ++i)
    to[i] = from[i];
}

std::string macro(const std::string& word) {
  if (word == "@yearly" || word == "@annually")
    return "0 0 1 1 *";
  if (word == "@monthly")
    return "0 0 1 * *";
  if (word == "@weekly")
    return "0 0 * * 0";
  if (word == "@daily" || word == "@midnight")
    return "0 0 * * *";
  if (word == "@hourly")
    return "0 * * * *";
  return {};
}

bool day_matches(const schedule& s, const civil& c) {
  bool dom = s.days[c.day];
  bool dow = s.weekdays[c.weekday];
  if (s.days_star && s.weekdays_star)
    return true;
  if (s.days_star)
    return dow;
  if (s.weekdays_star)
    return dom;
  return dom || dow;
}

} // namespace

std::optional<schedule> parse(const std::string& text, std::string& error) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;)
    words.push_back(w);
  if (words.size() == 1 && !words[0].empty() && words[0][0] == '@') {
    auto expanded = macro(words[0]);
    if (expanded.empty()) {
      error = "unknown cron macro '" + words[0]
              + "' (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)";
      return std::nullopt;
    }
    auto s = parse(expanded, error);
    if (s)
      s->text = words[0];
    return s;
  }
  std::string joined;
  for (auto& w : words)
    joined += (joined.empty() ? "" : " ") + w;
  if (words.size() == 5)
    words.insert(words.begin(), "0");
  else if (words.size() != 6) {
    error = "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            "or 6 with a leading second; got " + std::to_string(words.size());
    return std::nullopt;
  }
  schedule s;
  std::vector<bool> bits;
  for (size_t i = 0; i < 6; ++i) {
    if (!parse_field(words[i], specs[i], bits, error))
      return std::nullopt;
    s.fields[i] = words[i];
    switch (i) {
    case 0: copy_bits(bits, s.seconds); break;
    case 1: copy_bits(bits, s.minutes); break;
    case 2: copy_bits(bits, s.hours); break;
    case 3: copy_bits(bits, s.days); break;
    case 4: copy_bits(bits, s.months); break;
    default:
      copy_bits(bits, s.weekdays);
      if (bits[7])
        s.weekdays[0] = true; // 7 is Sunday too
    }
  }
  // As Vixie cron: a day field starting with `*` does not restrict the other.
  s.days_star = words[3][0] == '*';
  s.weekdays_star = words[5][0] == '*';
  s.text = joined;
  return s;
}

namespace {

/// APScheduler's day_of_week numbers (0 = Monday) as cron's (0 = Sunday):
/// n becomes n + 1 (so Sunday is 7, which cron also takes); steps stay.
std::string shift_weekdays(const std::string& expr) {
  std::string out;
  std::string_view rest = expr;
  bool first_item = true;
  while (true) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    auto slash = item.find('/');
    auto base = item.substr(0, slash);
    std::string shifted;
    for (size_t i = 0; i < base.size();) {
      if (std::isdigit(static_cast<unsigned char>(base[i]))) {
        size_t j = i;
        int v = 0;
        while (j < base.size() && std::isdigit(static_cast<unsigned char>(base[j])) && v < 1000)
          v = v * 10 + (base[j++] - '0');
        shifted += std::to_string(v + 1);
        i = j;
      } else {
        shifted += base[i++];
      }
    }
    if (slash != std::string_view::npos)
      shifted += std::string(item.substr(slash));
    out += (first_item ? "" : ",") + shifted;
    first_item = false;
    if (comma == std::string_view::npos)
      break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

} // namespace

std::optional<std::string> from_fields(const std::map<std::string, std::string>& fields,
                                       std::string& error) {
  // APScheduler's order of significance, and each field's minimum.
  static const std::array<std::pair<const char*, const char*>, 8> order = {{
    {"year", "*"}, {"month", "1"}, {"day", "1"}, {"week", "*"},
    {"day_of_week", "*"}, {"hour", "0"}, {"minute", "0"}, {"second", "0"},
  }};
  std::map<std::string, std::string> left;
  for (auto& [k, v] : fields) {
    if (k == "start_date" || k == "end_date" || k == "timezone" || k == "jitter") {
      if (!v.empty() && v != "null") {
        error = "schedule field '" + k + "' is not supported";
        return std::nullopt;
      }
      continue;
    }
    bool known = false;
    for (auto& o : order)
      known = known || k == o.first;
    if (!known) {
      error = "unknown schedule field '" + k
              + "' (expected second, minute, hour, day, month, day_of_week)";
      return std::nullopt;
    }
    left[k] = v;
  }
  std::map<std::string, std::string> out;
  for (auto& [name, minimum] : order) {
    if (auto it = left.find(name); it != left.end()) {
      out[name] = it->second;
      left.erase(it);
    } else {
      out[name] = left.empty() ? minimum : "*";
    }
  }
  for (const char* star_only : {"year", "week"})
    if (out[star_only] != "*") {
      error = std::string("schedule field '") + star_only + "' is only supported as \"*\"";
      return std::nullopt;
    }
  auto dow = out["day_of_week"] == "*" ? std::string{"*"} : shift_weekdays(out["day_of_week"]);
  return out["second"] + " " + out["minute"] + " " + out["hour"] + " " + out["day"] + " "
         + out["month"] + " " + dow;
}

std::optional<int64_t> next_after(const schedule& s, int64_t after) {
  int64_t t = after + 1;
  const int64_t limit = after + int64_t{5} * 366 * 86400;
  while (t <= limit) {
    auto c = to_civil(t);
    if (!s.months[c.month]) {
      t = c.month == 12 ? to_epoch(c.year + 1, 1, 1) : to_epoch(c.year, c.month + 1, 1);
      continue;
    }
    if (!day_matches(s, c)) {
      t = to_epoch(c.year, c.month, c.day) + 86400;
      continue;
    }
    if (!s.hours[c.hour]) {
      t = to_epoch(c.year, c.month, c.day, c.hour) + 3600;
      continue;
    }
    if (!s.minutes[c.minute]) {
      t = to_epoch(c.year, c.month, c.day, c.hour, c.minute) + 60;
      continue;
    }
    if (!s.seconds[c.second]) {
      ++t;
      continue;
    }
    return t;
  }
  return std::nullopt;
}

std::optional<int64_t> latest_due(const schedule& s, int64_t after, int64_t now,
                                  uint64_t max_steps) {
  std::optional<int64_t> found;
  int64_t t = after;
  for (uint64_t i = 0; i < max_steps; ++i) {
    auto n = next_after(s, t);
    if (!n || *n > now)
      break;
    found = t = *n;
  }
  return found;
}

std::string stamp(int64_t t) {
  auto c = to_civil(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld%02u%02u_%02u%02u%02u", static_cast<long long>(c.year),
                c.month, c.day, c.hour, c.minute, c.second);
  return buf;
}

} // namespace atlas::cron
