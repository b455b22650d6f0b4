// bitsmith: the command-line tool. Subcommands register in cli/commands.h.
#include "cli/commands.h"

int main(int argc, char** argv) { return bitsmith::cli::Main(argc, argv); }
