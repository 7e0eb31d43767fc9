// oar: train, evaluate and predict deep learning models from YAML configs.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "apps/oar/app.h"
#include "apps/oar/commands.h"
#include "engine/config/error.h"
#include "engine/train/trainer.h"

int main(int argc, char** argv) {
  using namespace oar::app;
  CLI::App app{"oar: train, evaluate and predict deep learning models from YAML configs"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every command");
  Commands cmds;
  cmds.add_to(app);
  try {
    app.parse(argc, argv);
    return cmds.run();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitBadInput;
  } catch (const oar::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());  // already `error: FILE:LINE: KEY: ...` lines
    return kExitBadInput;
  } catch (const oar::DivergedError& e) {
    std::fprintf(stderr, "\nerror: %s\n", e.what());
    return kExitDiverged;
  } catch (const oar::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  }
}
