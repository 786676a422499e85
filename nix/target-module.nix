# services.watchtower-target: the least-privilege account watchtower uses on a monitored host.
#
# watchtower logs in over SSH as an unprivileged user. Reading facts (generations, current and
# booted system, failed units, disk space) needs no privilege. Changing the host goes through
# one root-owned helper with a fixed set of verbs whose arguments it validates itself; sudo
# allows that helper and nothing else. No shell, no arbitrary command, no root login.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.watchtower-target;
  checks = import ./module-checks.nix { inherit lib; };
  profile = "/nix/var/nix/profiles/system";
  allowedUnits = lib.concatStringsSep " " cfg.restartableUnits;

  helper = pkgs.writeShellApplication {
    name = "watchtower-remediate";
    runtimeInputs = [ pkgs.coreutils pkgs.systemd pkgs.nix ];
    text = ''
      # Verbs: switch-generation N | rollback | restart UNIT | gc KEEP_GENERATIONS
      # Every switch runs detached in its own transient unit and this helper returns at once
      # (not waiting for the unit): a dropped SSH connection cannot leave a half-switched host.
      # watchtower confirms the outcome over fresh connections by reading /run/current-system,
      # which switch-to-configuration updates when the activation is done.
      verb="''${1:-}"
      case "$verb" in
        switch-generation)
          n="''${2:-}"
          [[ "$n" =~ ^[0-9]+$ ]] || { echo "generation must be a number" >&2; exit 64; }
          [ -e "${profile}-$n-link" ] || { echo "no generation $n" >&2; exit 65; }
          nix-env -p ${profile} --switch-generation "$n"
          exec systemd-run --unit="watchtower-switch-$n-$(date +%s)" --collect -- \
            "$(readlink -e ${profile})/bin/switch-to-configuration" switch
          ;;
        rollback)
          nix-env -p ${profile} --rollback
          exec systemd-run --unit="watchtower-rollback-$(date +%s)" --collect -- \
            "$(readlink -e ${profile})/bin/switch-to-configuration" switch
          ;;
        restart)
          unit="''${2:-}"
          for allowed in ${allowedUnits}; do
            if [ "$unit" = "$allowed" ]; then exec systemctl restart -- "$unit"; fi
          done
          echo "unit not allowed: $unit" >&2; exit 77
          ;;
        gc)
          keep="''${2:-}"
          [[ "$keep" =~ ^[0-9]+$ ]] || { echo "keep must be a number" >&2; exit 64; }
          nix-env -p ${profile} --delete-generations "+$keep"
          exec nix-store --gc
          ;;
        *)
          echo "usage: watchtower-remediate switch-generation N | rollback | restart UNIT | gc KEEP" >&2
          exit 64
          ;;
      esac
    '';
  };
in
{
  options.services.watchtower-target = {
    enable = lib.mkEnableOption "a least-privilege remediation account for watchtower";
    user = lib.mkOption {
      type = lib.types.str;
      default = "watchtower";
      description = "The account watchtower logs in as.";
    };
    authorizedKeys = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Public keys of the watchtower appliance(s).";
    };
    restartableUnits = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "mastodon-web.service" "matrix-synapse.service" ];
      description = "Units the systemd.restart remediation may restart.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = checks.targetAssertions cfg;
    warnings = checks.targetWarnings cfg;

    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.user;
      shell = pkgs.bashInteractive;
      openssh.authorizedKeys.keys = map (k: ''restrict,pty ${k}'') cfg.authorizedKeys;
    };
    users.groups.${cfg.user} = { };
    environment.systemPackages = [ helper ];
    # The helper, as root, without a password; nothing else (no other command, no other user).
    security.sudo.extraRules = [{
      users = [ cfg.user ];
      runAs = "root";
      commands = [{ command = lib.getExe helper; options = [ "NOPASSWD" ]; }];
    }];
  };
}
