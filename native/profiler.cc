// An operator profile from libtorch's own profiler (the legacy CPU profiler behind
// torch.autograd.profiler.profile): every ATen operator the dispatcher runs between
// profilerStart() and profilerStop(), the autograd engine's backward nodes included, which a
// trace of the addon's calls cannot see (backward() is one call). Times are wall time on the
// calling thread; "self" excludes the operators nested inside (aten::conv2d -> ... ->
// mkldnn_convolution), so the self times add up to the profiled region's op time.
// A libtorch without the legacy profiler (or built with BUDGETNET_NO_PROFILER=1, which
// scripts/build-addon-gpp.js sets when this file does not compile against the libtorch at hand)
// keeps profilerStart/profilerStop, which then say so.
#if !defined(BUDGETNET_NO_PROFILER) && __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#define BUDGETNET_PROFILER 1
#include <torch/csrc/autograd/profiler_legacy.h>
#else
#define BUDGETNET_PROFILER 0
#endif

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <torch/version.h>

#include "common.h"

namespace bn {

#if BUDGETNET_PROFILER
namespace prof = torch::autograd::profiler;

static bool g_profiling = false;

// profilerStart(recordShapes?: boolean)
OP(ProfilerStart) {
  GUARD("profilerStart") {
    if (g_profiling)
      throw std::invalid_argument("a profile is already running; call profilerStop() before starting another");
    bool shapes = a.missing(0) ? false : a.boolean(0);
    prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, shapes));
    g_profiling = true;
    return info.Env().Undefined();
  }
  END
}

struct Row {
  int64_t calls = 0;
  double totalUs = 0;
  double selfUs = 0;
};

// profilerStop() -> [{name, calls, totalUs, selfUs}] aggregated by operator name (and input
// shapes when recorded), largest self time first.
OP(ProfilerStop) {
  GUARD("profilerStop") {
    if (!g_profiling) throw std::invalid_argument("no profile is running; call profilerStart() first");
    g_profiling = false;
    prof::thread_event_lists lists = prof::disableProfilerLegacy();
    std::map<std::string, Row> rows;
    for (const auto& events : lists) {
      struct Open {
        const prof::LegacyEvent* push;
        std::string key;
        double childUs;
      };
      std::vector<Open> stack;
      for (const auto& e : events) {
        if (e.kind() == prof::EventKind::PushRange) {
          std::string key = e.name();
          if (!e.shapes().empty()) {
            key += " [";
            bool first = true;
            for (const auto& s : e.shapes()) {
              if (!first) key += ", ";
              first = false;
              key += "[";
              for (size_t i = 0; i < s.size(); ++i) key += (i ? "," : "") + std::to_string(s[i]);
              key += "]";
            }
            key += "]";
          }
          stack.push_back({&e, std::move(key), 0});
        } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
          Open o = std::move(stack.back());
          stack.pop_back();
          double us = o.push->cpuElapsedUs(e);
          Row& r = rows[o.key];
          r.calls++;
          r.totalUs += us;
          r.selfUs += us - o.childUs;
          if (!stack.empty()) stack.back().childUs += us;
        }
      }
    }
    std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.second.selfUs > y.second.selfUs; });
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env, sorted.size());
    for (size_t i = 0; i < sorted.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", sorted[i].first);
      o.Set("calls", Napi::Number::New(env, static_cast<double>(sorted[i].second.calls)));
      o.Set("totalUs", Napi::Number::New(env, sorted[i].second.totalUs));
      o.Set("selfUs", Napi::Number::New(env, sorted[i].second.selfUs));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }
  END
}

#else
OP(ProfilerStart) {
  GUARD("profilerStart") {
    throw std::runtime_error("this addon was built without libtorch's legacy profiler (libtorch " TORCH_VERSION
                             " lacks it or its API differs); profiles need an addon built against Debian's libtorch 1.13");
  }
  END
}
OP(ProfilerStop) {
  GUARD("profilerStop") {
    throw std::runtime_error("this addon was built without libtorch's legacy profiler");
  }
  END
}
#endif

void InitProfiler(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "profilerStart", ProfilerStart);
  Export(env, exports, "profilerStop", ProfilerStop);
}

}  // namespace bn
