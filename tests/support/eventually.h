// Eventually(pred): waits up to 10 s, polling every millisecond, until `pred`
// holds; returns whether it did. For observing that another thread reached a
// state (e.g. blocked in a call) without asserting anything about time.
#pragma once

#include <chrono>
#include <thread>

namespace walferry::testing_support {

template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 10000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

}  // namespace walferry::testing_support
