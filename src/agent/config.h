// The agent's configuration file (JSON, docs/agent.md): where the server is, who the device
// is, what is installed at first start, how it polls, and which update module installs what.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/agent.h"
#include "agent/config_applier.h"
#include "agent/link_watchdog.h"
#include "agent/remote_commands.h"
#include "agent/server_link.h"
#include "agent/telemetry_agent.h"
#include "base/result.h"

namespace drover::agent {

struct ModuleConfig {
  std::string type = "file";  // file, ab-slot, script
  // file
  std::string target;
  std::vector<std::string> restart;
  // ab-slot
  std::string slot_a, slot_b;
  std::string bootloader = "uboot";  // uboot, grub, file
  std::string grub_env = "/boot/grub/grubenv";
  std::string uboot_config;     // fw_env.config for fw_printenv/fw_setenv -c; empty: their default
  std::string bootloader_file;  // type file: the fake's state
  std::string cmdline = "/proc/cmdline";
  std::vector<std::string> reboot = {"reboot"};  // bootloader file: none unless given
  // bootloader file: whether a trial boot comes up ("boots") or falls back ("fails"), to
  // rehearse a failed update on a laptop.
  std::string trial_boot = "boots";
  // script
  std::vector<std::string> install, commit, rollback;
};

struct AgentConfig {
  HttpLinkOptions link;  // server, device identity, enrollment token, TLS files
  AgentOptions agent;    // data_dir, component, polling, checks, state scripts
  Inventory installed;   // what runs at first start (later: inventory.json in data_dir)
  ModuleConfig module;
  // Absent from the file: no telemetry at all. Paths are filled in from data_dir.
  std::optional<TelemetryOptions> telemetry;
  // "signed_updates": {"initial_root": PATH}: offers are checked against the server's
  // signed update metadata (SignedOffers), trusting first the root at PATH. "" : off.
  std::string initial_root;
  // "remote_commands": what the server may ask this device to do (docs/agent.md "Remote
  // commands"). Absent: every command is refused (and the refusal reported).
  RemoteCommandOptions remote;
  std::vector<std::string> remote_reboot;  // "reboot": the argv; empty: reboot refused
  // "link_watchdog": what the device does itself when the server stops answering
  // (docs/agent.md "Link watchdog"). Absent: nothing.
  std::optional<LinkWatchdogOptions> watchdog;
  std::vector<std::string> watchdog_reboot;  // its "reboot": the argv (with reboot_after)
  // "configuration": where the device's configuration document lives and how it is applied
  // (docs/agent.md "Configuration"). Absent: the agent applies none.
  std::optional<ConfigApplyOptions> configuration;
};

// kInvalidArgument naming the first bad field (unknown fields too: a misspelt setting must
// not be silently ignored).
Result<AgentConfig> parse_agent_config(std::string_view text);

}  // namespace drover::agent
