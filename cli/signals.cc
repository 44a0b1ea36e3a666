#include "cli/signals.h"

#include <pthread.h>

#include <ctime>

namespace walferry::cli {

sigset_t BlockSignals(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

std::thread SignalWaiter(const sigset_t& set, const std::atomic<bool>& done, std::function<bool(int sig)> on_signal) {
  return std::thread([set, &done, on_signal = std::move(on_signal)] {
    timespec ts{0, 200 * 1000 * 1000};
    while (!done.load()) {
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig > 0 && on_signal(sig)) return;
    }
  });
}

}  // namespace walferry::cli
