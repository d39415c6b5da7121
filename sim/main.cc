// tenure-sim: wiring only; everything lives in the tenure_sim library.
#include <iostream>

#include "sim/cli.h"

int main(int argc, char** argv) {
  tenure::sim::install_abort_reporter();
  return tenure::sim::run_cli(argc, argv, std::cout, std::cerr);
}
