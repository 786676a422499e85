# The NixOS options that watchtower's modules (and the fleet's NixOS configurations in the
# fleetFromNixos tests) set, declared the way nixpkgs declares them: same paths, same types, same
# defaults, so `lib.evalModules` with the real nixpkgs `lib` type-checks and merges our
# definitions as `nixos-rebuild` would. nixpkgs itself cannot be fetched here; only its `lib/` is
# vendored (../shared/vendor/nixpkgs-lib.tar.gz).
#
# Data, one entry per option: `path`, the nixpkgs file that declares it (`source`, relative to
# github.com/NixOS/nixpkgs unless it names another repository; read at the commit in `at`), and
# the mkOption arguments. `modules` turns the entries into one module per declaration with
# `_file` set to the source, so a type error names the nixpkgs file it follows.
#
# Only the options our modules touch are declared, with the sub-options they use; nixpkgs'
# own submodules have more (unknown sub-options still fail, as they would on NixOS, because
# these submodules are not freeform unless nixpkgs' are).
{ lib, pkgs }:

let
  t = lib.types;
  opt = lib.mkOption;
  nullOpt = type: opt { type = t.nullOr type; default = null; };

  # nixos/lib/systemd-lib.nix (NixOS/nixpkgs@01f31c2e): unit names as systemd accepts them.
  unitNameType = t.strMatching
    "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";

  # nixos/lib/systemd-unit-options.nix (NixOS/nixpkgs@01f31c2e): a [Service] value; list
  # definitions concatenate (repeatable directives), scalars must agree.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.isList (lib.head defs').value
      then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
  };
  # checkService in the same file: Type and Restart take one of these values.
  serviceConfigCheck = cfg:
    (!(cfg ? Type) || lib.elem cfg.Type [ "exec" "simple" "forking" "oneshot" "dbus" "notify" "notify-reload" "idle" ])
    && (!(cfg ? Restart) || lib.elem cfg.Restart [ "no" "on-success" "on-failure" "on-abnormal" "on-abort" "on-watchdog" "always" ]);

  serviceOptions = {
    options = {
      enable = opt { type = t.bool; default = true; };
      description = opt { type = t.singleLineStr; default = ""; };
      wantedBy = opt { type = t.listOf unitNameType; default = [ ]; };
      requiredBy = opt { type = t.listOf unitNameType; default = [ ]; };
      wants = opt { type = t.listOf unitNameType; default = [ ]; };
      requires = opt { type = t.listOf unitNameType; default = [ ]; };
      after = opt { type = t.listOf unitNameType; default = [ ]; };
      before = opt { type = t.listOf unitNameType; default = [ ]; };
      restartTriggers = opt { type = t.listOf t.unspecified; default = [ ]; };
      environment = opt { type = t.attrsOf (t.nullOr (t.oneOf [ t.str t.path t.package ])); default = { }; };
      path = opt { type = t.listOf (t.oneOf [ t.package t.str ]); default = [ ]; };
      script = opt { type = t.lines; default = ""; };
      serviceConfig = opt { type = t.addCheck (t.attrsOf unitOption) serviceConfigCheck; default = { }; };
      unitConfig = opt { type = t.attrsOf unitOption; default = { }; };
    };
  };

  # nixos/modules/config/users-groups.nix (NixOS/nixpkgs@005ab72f), userOpts / groupOpts.
  userOptions = { name, ... }: {
    options = {
      name = opt { type = t.passwdEntry t.str; default = name; };
      description = opt { type = t.passwdEntry t.str; default = ""; };
      uid = nullOpt t.int;
      isSystemUser = opt { type = t.bool; default = false; };
      isNormalUser = opt { type = t.bool; default = false; };
      group = opt { type = t.str; default = ""; };
      extraGroups = opt { type = t.listOf t.str; default = [ ]; };
      home = opt { type = t.passwdEntry t.path; default = "/var/empty"; };
      createHome = opt { type = t.bool; default = false; };
      shell = opt { type = t.nullOr (t.either t.shellPackage (t.passwdEntry t.path)); default = pkgs.shadow; };
      packages = opt { type = t.listOf t.package; default = [ ]; };
      # nixos/modules/services/networking/ssh/sshd.nix (userOptions) adds these to every user.
      openssh.authorizedKeys.keys = opt { type = t.listOf t.singleLineStr; default = [ ]; };
      openssh.authorizedKeys.keyFiles = opt { type = t.listOf t.path; default = [ ]; };
    };
  };
  groupOptions = { name, ... }: {
    options = {
      name = opt { type = t.passwdEntry t.str; default = name; };
      gid = nullOpt t.int;
      members = opt { type = t.listOf (t.passwdEntry t.str); default = [ ]; };
    };
  };

  # nixos/modules/system/etc/etc.nix (NixOS/nixpkgs@05924f71).
  etcOptions = { name, config, ... }: {
    options = {
      enable = opt { type = t.bool; default = true; };
      target = opt { type = t.str; default = name; };
      text = nullOpt t.lines;
      source = opt { type = t.path; };
      mode = opt { type = t.str; default = "symlink"; };
      user = opt { type = t.str; default = "+0"; };
      group = opt { type = t.str; default = "+0"; };
    };
  };

  # nixos/modules/security/sudo.nix (NixOS/nixpkgs@249968aa): security.sudo.extraRules.
  sudoRule = t.submodule {
    options = {
      users = opt { type = t.listOf (t.either t.str t.int); default = [ ]; };
      groups = opt { type = t.listOf (t.either t.str t.int); default = [ ]; };
      host = opt { type = t.str; default = "ALL"; };
      runAs = opt { type = t.str; default = "ALL:ALL"; };
      commands = opt {
        type = t.listOf (t.either t.str (t.submodule {
          options = {
            command = opt { type = t.str; };
            options = opt {
              type = t.listOf (t.enum [ "NOPASSWD" "PASSWD" "NOEXEC" "EXEC" "SETENV" "NOSETENV"
                "LOG_INPUT" "NOLOG_INPUT" "LOG_OUTPUT" "NOLOG_OUTPUT" ]);
              default = [ ];
            };
          };
        }));
      };
    };
  };

  # nixos/modules/services/monitoring/prometheus/default.nix: promTypes.scrape_config (every
  # optional key is `nullOr`, default null, and nulls are dropped when prometheus.yml is written).
  staticConfig = t.submodule {
    options = {
      targets = opt { type = t.listOf t.str; };
      labels = opt { type = t.attrsOf t.str; default = { }; };
    };
  };
  basicAuth = t.submodule {
    options = {
      username = opt { type = t.str; };
      password = nullOpt t.str;
      password_file = nullOpt t.str;
    };
  };
  scrapeConfig = t.submodule {
    options = {
      job_name = opt { type = t.str; };
      scrape_interval = nullOpt t.str;
      scrape_timeout = nullOpt t.str;
      metrics_path = nullOpt t.str;
      scheme = nullOpt (t.enum [ "http" "https" ]);
      basic_auth = nullOpt basicAuth;
      static_configs = nullOpt (t.listOf staticConfig);
    };
  };

  # nixos/modules/services/web-servers/nginx/vhost-options.nix and location-options.nix: the
  # part of a virtual host fleetFromNixos reads (its name, TLS and what a location proxies to).
  nginxLocation = t.submodule {
    options.proxyPass = nullOpt t.str;
  };
  nginxVhost = { name, ... }: {
    options = {
      serverName = nullOpt t.str;
      serverAliases = opt { type = t.listOf t.str; default = [ ]; };
      forceSSL = opt { type = t.bool; default = false; };
      onlySSL = opt { type = t.bool; default = false; };
      addSSL = opt { type = t.bool; default = false; };
      enableACME = opt { type = t.bool; default = false; };
      root = nullOpt t.path;
      locations = opt { type = t.attrsOf nginxLocation; default = { }; };
    };
  };

  tomlFormat = pkgs.formats.toml { };

  at = {
    users = "005ab72f9cf5a75cdcd9ff672fb4a3b03391619f";
    units = "01f31c2ee7d045a337dff0f858c0ed61dd0f4ddb";
    etc = "05924f714f31ff83bd10ed1710638688999c3725";
    firewall = "0192bb844360b5b42ebaf7f575f84d79910a5927";
    sudo = "249968aa226b344b475b419164042862b3b4e928";
    mastodon = "00a3745a545fede2005d8ef12fccbb5ac8f9f5e8";
    pixelfed = "00f9c127af1df3874760a383e3c7c67464696de8";
    garage = "05924f714f31ff83bd10ed1710638688999c3725";
    powerdns = "05924f714f31ff83bd10ed1710638688999c3725";
    snm = "04be100f3728a8ad4df459f2157b093bae8e99a9";
  };

  declarations = [
    # nixos/modules/misc/assertions.nix
    { path = "assertions"; source = "nixos/modules/misc/assertions.nix"; type = t.listOf t.unspecified; default = [ ]; }
    { path = "warnings"; source = "nixos/modules/misc/assertions.nix"; type = t.listOf t.str; default = [ ]; }
    # nixos/modules/misc/meta.nix (maintainers is a list of lib.maintainers entries)
    { path = "meta"; source = "nixos/modules/misc/meta.nix"; type = t.lazyAttrsOf t.raw; default = { }; }
    { path = "users.users"; source = "nixos/modules/config/users-groups.nix"; at = at.users; type = t.attrsOf (t.submodule userOptions); default = { }; }
    { path = "users.groups"; source = "nixos/modules/config/users-groups.nix"; at = at.users; type = t.attrsOf (t.submodule groupOptions); default = { }; }
    { path = "environment.systemPackages"; source = "nixos/modules/config/system-path.nix"; type = t.listOf t.package; default = [ ]; }
    { path = "environment.etc"; source = "nixos/modules/system/etc/etc.nix"; at = at.etc; type = t.attrsOf (t.submodule etcOptions); default = { }; }
    { path = "systemd.services"; source = "nixos/modules/system/boot/systemd.nix (unit options: nixos/lib/systemd-unit-options.nix)"; at = at.units; type = t.attrsOf (t.submodule serviceOptions); default = { }; }
    { path = "systemd.tmpfiles.rules"; source = "nixos/modules/system/boot/systemd/tmpfiles.nix"; type = t.listOf t.str; default = [ ]; }
    { path = "networking.firewall.enable"; source = "nixos/modules/services/networking/firewall.nix"; at = at.firewall; type = t.bool; default = true; }
    { path = "networking.firewall.allowedTCPPorts"; source = "nixos/modules/services/networking/firewall.nix"; at = at.firewall; type = t.listOf t.port; default = [ ]; apply = ports: lib.unique (builtins.sort builtins.lessThan ports); }
    { path = "networking.firewall.allowedUDPPorts"; source = "nixos/modules/services/networking/firewall.nix"; at = at.firewall; type = t.listOf t.port; default = [ ]; apply = ports: lib.unique (builtins.sort builtins.lessThan ports); }
    # nixos/modules/misc/nixpkgs.nix and nixos/modules/virtualisation/qemu-vm.nix (the VM test)
    { path = "nixpkgs.overlays"; source = "nixos/modules/misc/nixpkgs.nix"; type = t.listOf t.unspecified; default = [ ]; }
    { path = "virtualisation.memorySize"; source = "nixos/modules/virtualisation/qemu-vm.nix"; type = t.ints.positive; default = 1024; }
    # nixos/modules/tasks/network-interfaces.nix
    { path = "networking.hostName"; source = "nixos/modules/tasks/network-interfaces.nix"; type = t.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$"; default = "nixos"; }
    { path = "networking.domain"; source = "nixos/modules/tasks/network-interfaces.nix"; type = t.nullOr t.str; default = null; }
    { path = "security.sudo.enable"; source = "nixos/modules/security/sudo.nix"; at = at.sudo; type = t.bool; default = true; }
    { path = "security.sudo.extraRules"; source = "nixos/modules/security/sudo.nix"; at = at.sudo; type = t.listOf sudoRule; default = [ ]; }
    { path = "services.prometheus.enable"; source = "nixos/modules/services/monitoring/prometheus/default.nix"; type = t.bool; default = false; }
    { path = "services.prometheus.ruleFiles"; source = "nixos/modules/services/monitoring/prometheus/default.nix"; type = t.listOf t.path; default = [ ]; }
    { path = "services.prometheus.rules"; source = "nixos/modules/services/monitoring/prometheus/default.nix"; type = t.listOf t.str; default = [ ]; }
    { path = "services.prometheus.scrapeConfigs"; source = "nixos/modules/services/monitoring/prometheus/default.nix"; type = t.listOf scrapeConfig; default = [ ]; }
    # nixos/modules/services/networking/ssh/sshd.nix
    { path = "services.openssh.enable"; source = "nixos/modules/services/networking/ssh/sshd.nix"; type = t.bool; default = false; }
    { path = "services.openssh.ports"; source = "nixos/modules/services/networking/ssh/sshd.nix"; type = t.listOf t.port; default = [ 22 ]; }
    # nixos/modules/services/web-servers/nginx/default.nix
    { path = "services.nginx.enable"; source = "nixos/modules/services/web-servers/nginx/default.nix"; type = t.bool; default = false; }
    { path = "services.nginx.defaultSSLListenPort"; source = "nixos/modules/services/web-servers/nginx/default.nix"; type = t.port; default = 443; }
    { path = "services.nginx.virtualHosts"; source = "nixos/modules/services/web-servers/nginx/default.nix (vhost-options.nix, location-options.nix)"; type = t.attrsOf (t.submodule nginxVhost); default = { }; }
    # nixos/modules/services/web-apps/mastodon.nix
    { path = "services.mastodon.enable"; source = "nixos/modules/services/web-apps/mastodon.nix"; at = at.mastodon; type = t.bool; default = false; }
    { path = "services.mastodon.localDomain"; source = "nixos/modules/services/web-apps/mastodon.nix"; at = at.mastodon; type = t.str; }
    { path = "services.mastodon.configureNginx"; source = "nixos/modules/services/web-apps/mastodon.nix"; at = at.mastodon; type = t.bool; default = false; }
    { path = "services.mastodon.extraConfig"; source = "nixos/modules/services/web-apps/mastodon.nix"; at = at.mastodon; type = t.attrs; default = { }; }
    # nixos/modules/services/web-apps/peertube.nix
    { path = "services.peertube.enable"; source = "nixos/modules/services/web-apps/peertube.nix"; type = t.bool; default = false; }
    { path = "services.peertube.localDomain"; source = "nixos/modules/services/web-apps/peertube.nix"; type = t.str; }
    { path = "services.peertube.listenWeb"; source = "nixos/modules/services/web-apps/peertube.nix"; type = t.port; default = 9000; }
    { path = "services.peertube.enableWebHttps"; source = "nixos/modules/services/web-apps/peertube.nix"; type = t.bool; default = false; }
    # nixos/modules/services/web-apps/pixelfed.nix
    { path = "services.pixelfed.enable"; source = "nixos/modules/services/web-apps/pixelfed.nix"; at = at.pixelfed; type = t.bool; default = false; }
    { path = "services.pixelfed.domain"; source = "nixos/modules/services/web-apps/pixelfed.nix"; at = at.pixelfed; type = t.str; }
    { path = "services.pixelfed.settings"; source = "nixos/modules/services/web-apps/pixelfed.nix"; at = at.pixelfed; type = t.attrsOf (t.oneOf [ t.bool t.int t.str ]); default = { }; }
    # nixos/modules/services/matrix/synapse.nix: settings is freeform (a YAML format), with typed
    # server_name and public_baseurl.
    { path = "services.matrix-synapse.enable"; source = "nixos/modules/services/matrix/synapse.nix"; type = t.bool; default = false; }
    { path = "services.matrix-synapse.settings"; source = "nixos/modules/services/matrix/synapse.nix"; default = { };
      type = t.submodule ({ config, ... }: {
        freeformType = t.attrsOf t.anything;
        options.server_name = opt { type = t.str; default = "nixos"; };
        options.public_baseurl = nullOpt t.str;
      }); }
    # nixos/modules/services/web-servers/garage.nix: settings is freeform TOML (s3_api, admin
    # are Garage's own sections, see Garage's doc/book/reference-manual/configuration.md).
    { path = "services.garage.enable"; source = "nixos/modules/services/web-servers/garage.nix"; at = at.garage; type = t.bool; default = false; }
    { path = "services.garage.settings"; source = "nixos/modules/services/web-servers/garage.nix"; at = at.garage; default = { };
      type = t.submodule { freeformType = tomlFormat.type; }; }
    # nixos/modules/services/networking/powerdns.nix: pdns.conf as text.
    { path = "services.powerdns.enable"; source = "nixos/modules/services/networking/powerdns.nix"; at = at.powerdns; type = t.bool; default = false; }
    { path = "services.powerdns.extraConfig"; source = "nixos/modules/services/networking/powerdns.nix"; at = at.powerdns; type = t.lines; default = "launch=bind"; }
    # simple-nixos-mailserver default.nix (gitlab.com/simple-nixos-mailserver/nixos-mailserver,
    # read in the GitHub fork GoldsteinE/simple-nixos-mailserver@04be100f).
    { path = "mailserver.enable"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = false; }
    { path = "mailserver.fqdn"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.str; }
    { path = "mailserver.domains"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.listOf t.str; default = [ ]; }
    { path = "mailserver.dkimSigning"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = true; }
    { path = "mailserver.dkimSelector"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.str; default = "mail"; }
    { path = "mailserver.enableSubmission"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = true; }
    { path = "mailserver.enableSubmissionSsl"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = true; }
    { path = "mailserver.enableImap"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = true; }
    { path = "mailserver.enableImapSsl"; source = "simple-nixos-mailserver: default.nix"; at = at.snm; type = t.bool; default = true; }
  ];

  declare = d: {
    _file = "nixpkgs ${d.source}${lib.optionalString (d ? at) " @ ${d.at}"}";
    options = lib.setAttrByPath (lib.splitString "." d.path)
      (opt (removeAttrs d [ "path" "source" "at" ]));
  };

  # networking.fqdn / fqdnOrHostName (network-interfaces.nix) derive from hostName + domain.
  derived = { config, ... }: {
    _file = "nixpkgs nixos/modules/tasks/network-interfaces.nix";
    options.networking.fqdn = opt {
      type = t.str;
      default = if config.networking.hostName != "" && config.networking.domain != null
        then "${config.networking.hostName}.${config.networking.domain}"
        else throw "The FQDN is required but cannot be determined from `networking.hostName` and `networking.domain`.";
    };
    options.networking.fqdnOrHostName = opt {
      type = t.str;
      readOnly = true;
      default = if config.networking.domain == null then config.networking.hostName else config.networking.fqdn;
    };
  };

  # The assertions nixpkgs' users-groups.nix makes about every account, so a module that
  # creates a user without its group fails here as it would on NixOS.
  userAssertions = { config, ... }: {
    _file = "nixpkgs nixos/modules/config/users-groups.nix";
    config.assertions = lib.flatten (lib.mapAttrsToList (name: user: [
      { assertion = user.group != "" && config.users.groups ? ${user.group};
        message = "users.users.${name}.group: the primary group ${user.group} is undefined (users-groups.nix)"; }
      { assertion = user.isSystemUser != user.isNormalUser;
        message = "Exactly one of users.users.${name}.isSystemUser and users.users.${name}.isNormalUser must be set."; }
    ]) config.users.users);
  };
in
{
  inherit declarations;
  modules = map declare declarations ++ [ derived userAssertions ];
}
