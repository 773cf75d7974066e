// A test binary that dies of SIGSEGV, SIGBUS or SIGABRT prints its stack on
// stderr first, so a crash seen once in CI leaves more than "SegFault" behind.
// Under AddressSanitizer its own, better report is left in place.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <initializer_list>

namespace {

#if !defined(__SANITIZE_ADDRESS__)
void print_stack_and_die(int sig) {
  static const char kHeader[] = "\n*** fatal signal; stack:\n";
  (void)!::write(2, kHeader, sizeof kHeader - 1);
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, 2);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

const bool kInstalled = [] {
  void* warm[1];
  ::backtrace(warm, 1);  // loads libgcc now, not inside the handler
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT}) ::signal(sig, print_stack_and_die);
  return true;
}();
#endif

}  // namespace
