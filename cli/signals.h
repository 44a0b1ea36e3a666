// The long-running commands' (serve, agent) signal handling: the stop signals
// blocked before any thread starts, and one thread that takes them with
// sigtimedwait. Process-wide state: set up by the command, never by library
// code.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <initializer_list>
#include <thread>

namespace walferry::cli {

// Blocks `signals` in the calling thread, and so in every thread it starts
// after; returns them as a set for SignalWaiter.
sigset_t BlockSignals(std::initializer_list<int> signals);

// A thread that waits for a signal of `set` (in 200 ms slices, to see `done`)
// and calls `on_signal` with it; it ends when on_signal returns true or once
// `done` is set. Join it after setting `done`.
std::thread SignalWaiter(const sigset_t& set, const std::atomic<bool>& done, std::function<bool(int sig)> on_signal);

}  // namespace walferry::cli
