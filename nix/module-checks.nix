# The bad combinations nix/module.nix and nix/target-module.nix refuse at evaluation time (NixOS
# prints every failed assertion and does not build), and the ones they only warn about. Each
# message names the option and says what to do, so `nixos-rebuild` fails with a sentence rather
# than with a unit that crash-loops at boot.
{ lib }:

let
  # host:port the way watchtower's config loader and systemd/Python sockets take it: IPv6 in
  # brackets, a port 1..65535 without leading zeros. null when it does not parse.
  parseHostPort = s:
    let m = builtins.match "([[][0-9A-Fa-f:.]+[]]|[A-Za-z0-9._-]+):(0|[1-9][0-9]{0,4})" s;
    in if m == null then null
      else let port = lib.toInt (lib.elemAt m 1); in
        if port < 1 || port > 65535 then null else { host = lib.elemAt m 0; inherit port; };

  # systemd accepts a credential name that is a valid file name and a valid fd name
  # (src/shared/creds-util.c credential_name_valid: filename_is_valid && fdname_is_valid):
  # printable ASCII, no ':' and no '/', not "." or "..", 1..255 bytes. '%' is refused too: in
  # a unit file it starts a specifier, so the name systemd sees would not be the one written.
  credentialNameOk = n:
    n != "" && n != "." && n != ".." && builtins.stringLength n <= 255
    && builtins.match "[ -~]*" n != null && builtins.match ".*[:/%].*" n == null;

  # A secret given as a Nix path literal (./key) or a store path is copied into the
  # world-readable Nix store when the unit or the TOML file is built.
  inStore = p: builtins.isPath p || lib.hasPrefix builtins.storeDir (toString p);

  # Every { "$file" = ...; } secret reference in the settings, with its key path.
  fileRefs = prefix: v:
    if builtins.isAttrs v then
      lib.optional (v ? "$file") { path = prefix; file = v."$file"; }
      ++ lib.concatLists (lib.mapAttrsToList (k: x: fileRefs "${prefix}.${k}" x) (removeAttrs v [ "$file" ]))
    else if builtins.isList v then lib.concatLists (lib.imap0 (i: x: fileRefs "${prefix}[${toString i}]" x) v)
    else [ ];

  # Every table key in the settings (for the comma check below).
  keysIn = v:
    if builtins.isAttrs v then lib.concatLists (lib.mapAttrsToList (k: x: [ k ] ++ keysIn x) v)
    else if builtins.isList v then lib.concatMap keysIn v
    else [ ];

  unitNameOk = u: builtins.match "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)" u != null;

  opt = "services.watchtower";
in
{
  inherit parseHostPort credentialNameOk;

  monitorAssertions = { cfg, fleet, credentialDir }:
    let
      dashboard = fleet.dashboard or { };
      refs = fileRefs "settings" fleet;
      credRefs = lib.filter (r: builtins.isString r.file && lib.hasPrefix "${credentialDir}/" r.file) refs;
      metricsInSettings = fleet.metrics.listen or null;
    in
    [
      {
        assertion = !cfg.dashboard.enable || (dashboard.users_file or null) != null || (dashboard.oidc or null) != null;
        message = "${opt}.dashboard.enable needs a way to sign in: set ${opt}.settings.dashboard.users_file (from `watchtower dashboard-user add`) or ${opt}.settings.dashboard.oidc.";
      }
      {
        assertion = parseHostPort cfg.metrics.listenAddress != null;
        message = "${opt}.metrics.listenAddress = \"${cfg.metrics.listenAddress}\" is not host:port with a port 1-65535 (IPv6 in brackets, e.g. \"[::1]:9810\").";
      }
      {
        assertion = builtins.match "[A-Za-z0-9._-]+|[[][0-9A-Fa-f:.]+[]]|[0-9A-Fa-f:]+" cfg.dashboard.listenAddress != null;
        message = "${opt}.dashboard.listenAddress = \"${cfg.dashboard.listenAddress}\" is not an address or host name (the port goes in ${opt}.dashboard.port).";
      }
      {
        assertion = metricsInSettings == null || metricsInSettings == cfg.metrics.listenAddress;
        message = "${opt}.settings.metrics.listen = \"${toString metricsInSettings}\" differs from ${opt}.metrics.listenAddress = \"${cfg.metrics.listenAddress}\", which the firewall and the Prometheus scrape job use: set ${opt}.metrics.listenAddress only.";
      }
    ]
    ++ lib.mapAttrsToList (name: _: {
      assertion = credentialNameOk name;
      message = "${opt}.secretFiles.\"${name}\": systemd's LoadCredential= rejects this name (it must be 1-255 printable ASCII characters without ':', '/' or '%', and not \".\" or \"..\").";
    }) cfg.secretFiles
    ++ lib.mapAttrsToList (name: path: {
      assertion = !inStore path;
      message = "${opt}.secretFiles.\"${name}\" is a Nix path or store path (${toString path}): the secret would be copied into the world-readable Nix store. Give it as a string, e.g. \"/run/keys/${name}\".";
    }) cfg.secretFiles
    ++ lib.optional (cfg.environmentFile != null) {
      assertion = !inStore cfg.environmentFile;
      message = "${opt}.environmentFile is a Nix path or store path: its secrets would be copied into the world-readable Nix store. Give it as a string.";
    }
    ++ map (r: {
      assertion = cfg.secretFiles ? ${lib.removePrefix "${credentialDir}/" r.file};
      message = "${opt}.${r.path} reads ${r.file}, but ${opt}.secretFiles has no entry \"${lib.removePrefix "${credentialDir}/" r.file}\" to put it there.";
    }) credRefs
    ++ map (r: {
      assertion = !inStore r.file;
      message = "${opt}.${r.path}.\"$file\" is a Nix path or store path: the secret would be copied into the world-readable Nix store. Give the file as a string (and hand it over with ${opt}.secretFiles).";
    }) refs;

  monitorWarnings = { cfg, fleet, config }:
    let
      listen = parseHostPort cfg.metrics.listenAddress;
      commaKeys = lib.filter (k: lib.hasInfix "," k) (keysIn fleet);
    in
    lib.optional (cfg.prometheus.enable && !(config.services.prometheus.enable or false))
      "${opt}.prometheus.enable adds a scrape job and alert rules to services.prometheus, which is not enabled."
    ++ lib.optional (cfg.openFirewall && listen != null && lib.elem listen.host [ "127.0.0.1" "localhost" "[::1]" ])
      "${opt}.openFirewall opens port ${toString listen.port}, but /metrics listens on ${listen.host} only."
    ++ lib.optional (commaKeys != [ ])
      "${opt}.settings has keys with a comma (${lib.concatStringsSep ", " commaKeys}): nixpkgs' TOML writer truncated such keys while it used yj (NixOS/nixpkgs#510585, sclevine/yj#52); check the rendered /etc/watchtower/fleet.toml.";

  targetAssertions = cfg:
    let opt = "services.watchtower-target"; in
    [
      {
        assertion = cfg.user != "root" && builtins.match "[a-z_][a-z0-9_-]*" cfg.user != null;
        message = "${opt}.user = \"${cfg.user}\": the remediation account must be an unprivileged user name (not root).";
      }
    ]
    ++ map (u: {
      # The helper compares UNIT against this list word by word: a name with a space or a
      # shell character would not match itself (or would match something else).
      assertion = unitNameOk u;
      message = "${opt}.restartableUnits: \"${u}\" is not a systemd unit name (e.g. \"mastodon-web.service\").";
    }) cfg.restartableUnits;

  targetWarnings = cfg:
    lib.optional (cfg.authorizedKeys == [ ])
      "services.watchtower-target.authorizedKeys is empty: watchtower cannot log in to this host.";
}
