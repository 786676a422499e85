# services.watchtower: the monitoring appliance (probes, store, /metrics, dashboard).
{ config, lib, pkgs, ... }:

let
  cfg = config.services.watchtower;
  settingsFormat = pkgs.formats.toml { };
  checks = import ./module-checks.nix { inherit lib; };
  # The fleet derived from NixOS configurations, under the operator's own settings (theirs win).
  fleet =
    if cfg.fleet.fromNixos == null then cfg.settings
    else import ./fleet-merge.nix (import ./fleet-from-nixos.nix cfg.fleet.fromNixos) cfg.settings;
  # Rendered per nixpkgs RFC 42: free-form settings, a few typed keys with defaults.
  configFile = settingsFormat.generate "watchtower.toml" fleet;
  stateDir = "/var/lib/watchtower";
  credentialDir = "/run/credentials/watchtower.service";
  metricsListen = checks.parseHostPort cfg.metrics.listenAddress;
  # The command of the main unit per role (docs/scale-out.md).
  exe = lib.getExe cfg.package;
  roleCommand = {
    all = "${exe} run -c ${configFile}";
    scheduler = "${exe} run --role scheduler -c ${configFile}";
    agent = lib.escapeShellArgs [ exe "agent" "-c" configFile "--vantage" (toString cfg.agent.vantage) ];
  }.${cfg.role};
  vantages = (fleet.scaleout or { }).vantages or [ "local" ];

  hardening = {
    User = "watchtower";
    Group = "watchtower";
    StateDirectory = "watchtower";
    StateDirectoryMode = "0750";
    WorkingDirectory = stateDir;
    UMask = "0077";
    Restart = "on-failure";
    RestartSec = 5;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    NoNewPrivileges = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
    EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
    LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") cfg.secretFiles;
  };
in
{
  options.services.watchtower = {
    enable = lib.mkEnableOption "watchtower, the fleet monitoring and compliance appliance";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.watchtower or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression "pkgs.watchtower";
      description = "The watchtower package to run.";
    };

    settings = lib.mkOption {
      description = ''
        The fleet file (docs/configuration.md), rendered to TOML. Secrets are never written
        here: refer to them as `{ "$file" = "/run/credentials/watchtower.service/NAME"; }`
        with `secretFiles.NAME`, or `{ "$env" = "NAME"; }` with `environmentFile`.
      '';
      default = { };
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        # Typed keys with defaults the module knows better than the fleet file's own: the
        # store under the state directory, /metrics where the firewall and scrape job look.
        options.store.database = lib.mkOption {
          type = lib.types.str;
          default = "sqlite:///${stateDir}/watchtower.db";
          description = "SQLAlchemy URL of the store (SQLite by default, or postgresql+psycopg://).";
        };
        options.metrics.listen = lib.mkOption {
          type = lib.types.str;
          default = cfg.metrics.listenAddress;
          defaultText = lib.literalExpression "config.services.watchtower.metrics.listenAddress";
          description = "Where `/metrics` is served.";
        };
        options.probe.nameservers = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
          example = [ "127.0.0.1:53" ];
          description = "Resolvers as host:port; empty means /etc/resolv.conf.";
        };
      };
    };

    secretFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.path;
      default = { };
      example = { pdns-api-key = "/run/keys/pdns-api-key"; };
      description = ''
        Secret files handed to the services with systemd's LoadCredential, readable only by
        them at /run/credentials/<unit>/NAME. They never enter the Nix store.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "A systemd EnvironmentFile for secrets referenced as { \"$env\" = \"NAME\"; }.";
    };

    metrics = {
      listenAddress = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1:9810";
        description = "host:port where `watchtower run` serves /metrics (IPv6 in brackets).";
      };
    };

    dashboard = {
      enable = lib.mkEnableOption "the Streamlit dashboard";
      listenAddress = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1";
        description = "Address the dashboard listens on (put a TLS proxy in front).";
      };
      port = lib.mkOption {
        type = lib.types.port;
        default = 8501;
        description = "Port of the dashboard.";
      };
    };

    role = lib.mkOption {
      type = lib.types.enum [ "all" "scheduler" "agent" ];
      default = "all";
      example = "agent";
      description = ''
        What this machine does (docs/scale-out.md). `all`: one process probes on its own
        schedule (the default; SQLite or PostgreSQL). `scheduler`: defers every probe to the
        agents of the vantages `settings.scaleout` names and judges their results by quorum.
        `agent`: runs the probe jobs of `agent.vantage`. The last two share a PostgreSQL
        `settings.store.database`.
      '';
    };

    agent.vantage = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "fra";
      description = "The vantage this agent probes from: one of `settings.scaleout.vantages` (role `agent` only).";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the metrics and dashboard ports in the firewall.";
    };

    prometheus = {
      enable = lib.mkEnableOption "a scrape job and the shipped alert rules in services.prometheus";
    };

    fleet.fromNixos = lib.mkOption {
      type = lib.types.nullOr (lib.types.attrsOf lib.types.unspecified);
      default = null;
      example = lib.literalExpression "self.nixosConfigurations";
      description = ''
        Evaluated NixOS configurations (name -> the result of nixpkgs.lib.nixosSystem) whose
        services, hosts, mail domains and DNS API become fleet entries (see
        `watchtower.lib.fleetFromNixos`). They are merged under `settings`: an entry of yours
        with the same name wins key by key, and entries of yours are kept.
      '';
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    {
      assertions = checks.monitorAssertions { inherit cfg fleet credentialDir; } ++ [
        {
          assertion = cfg.role == "all" || lib.hasPrefix "postgresql" cfg.settings.store.database;
          message = "services.watchtower.role = \"${cfg.role}\" needs a PostgreSQL services.watchtower.settings.store.database (postgresql+psycopg://...) that schedulers and agents share";
        }
        {
          assertion = cfg.role != "agent" || (cfg.agent.vantage != null && builtins.elem cfg.agent.vantage vantages);
          message = "services.watchtower.role = \"agent\" needs services.watchtower.agent.vantage set to one of settings.scaleout.vantages (${lib.concatStringsSep ", " vantages})";
        }
      ];
      warnings = checks.monitorWarnings { inherit cfg fleet config; };

      users.users.watchtower = {
        isSystemUser = true;
        group = "watchtower";
        home = stateDir;
        description = "watchtower fleet monitor";
      };
      users.groups.watchtower = { };

      environment.systemPackages = [ cfg.package ];
      environment.etc."watchtower/fleet.toml".source = configFile;

      systemd.services.watchtower = {
        description = "watchtower fleet probes, store and /metrics";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        restartTriggers = [ configFile ];
        environment.WATCHTOWER_STATE_DIR = stateDir;
        # dns.records commits fixes to octoDNS-managed zones' repositories (git as argv lists)
        path = [ pkgs.git ];
        serviceConfig = hardening // {
          ExecStartPre = "${lib.getExe cfg.package} validate -c ${configFile}";
          ExecStart = roleCommand;
          # SIGHUP reloads the fleet file; a bad new file is rejected and the old one keeps running.
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        };
      };

      networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall (
        lib.optional (metricsListen != null) metricsListen.port
        ++ lib.optional cfg.dashboard.enable cfg.dashboard.port
      );
    }

    (lib.mkIf cfg.dashboard.enable {
      systemd.services.watchtower-dashboard = {
        description = "watchtower dashboard (Streamlit)";
        wantedBy = [ "multi-user.target" ];
        after = [ "watchtower.service" ];
        restartTriggers = [ configFile ];
        environment.WATCHTOWER_STATE_DIR = stateDir;
        environment.HOME = stateDir;
        serviceConfig = hardening // {
          ExecStart = lib.escapeShellArgs [
            (lib.getExe cfg.package) "dashboard" "-c" configFile
            "--address" cfg.dashboard.listenAddress "--port" (toString cfg.dashboard.port)
          ];
        };
      };
    })

    (lib.mkIf cfg.prometheus.enable {
      services.prometheus.scrapeConfigs = [{
        job_name = "watchtower";
        scrape_interval = "30s";
        static_configs = [{ targets = [ cfg.metrics.listenAddress ]; }];
      }];
      services.prometheus.ruleFiles = [ ../dashboards/prometheus/watchtower-alerts.yml ];
    })
  ]);

  meta.maintainers = [ ];
}
