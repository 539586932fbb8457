#pragma once
// Runs a shell command line for the command-line tools' tests: its exit status and what it printed on stdout.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <sys/wait.h>

namespace llama3::test {

struct CommandResult {
  int status;  // the exit status, or -1 if the command did not exit (a signal)
  std::string out;
};

inline CommandResult run_command(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + cmd);
  CommandResult r{0, {}};
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace llama3::test
