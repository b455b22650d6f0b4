// Standalone benchmark runner: the same cases as `bitsmith bench`.
#include "bench/registry.h"

int main(int argc, char** argv) { return bitsmith::bench::Main(argc, argv); }
