# fleetFromNixos: evaluated NixOS configurations -> the watchtower fleet they declare.
#
#   watchtower.lib.fleetFromNixos self.nixosConfigurations
#
# Takes an attrset name -> nixpkgs.lib.nixosSystem result (or a bare `config`) and returns the
# fleet file as an attrset: the web services each node runs with their public URLs, its host
# (when watchtower can log in to it), the mail server's host and domains, the DNS server's API,
# and the zones they live in. Only builtins are used, so `watchtower fleet import` can apply the
# same file to a flake that does not depend on watchtower (`nix eval --apply`).
#
# Option paths read, each as its module declares it:
#   networking.fqdnOrHostName            nixpkgs nixos/modules/tasks/network-interfaces.nix
#   services.openssh.{enable,ports}      nixpkgs nixos/modules/services/networking/ssh/sshd.nix
#   services.watchtower-target.*         this repository, nix/target-module.nix
#   services.mastodon.{enable,localDomain,configureNginx,extraConfig.WEB_DOMAIN}
#                                        nixpkgs nixos/modules/services/web-apps/mastodon.nix
#   services.nginx.{defaultSSLListenPort,virtualHosts.<n>.{serverName,forceSSL,onlySSL,addSSL,
#     enableACME,locations.<p>.proxyPass}}
#                                        nixpkgs nixos/modules/services/web-servers/nginx/
#   services.peertube.{enable,localDomain,listenWeb,enableWebHttps}
#                                        nixpkgs nixos/modules/services/web-apps/peertube.nix
#   services.pixelfed.{enable,domain,settings.APP_URL}
#                                        nixpkgs nixos/modules/services/web-apps/pixelfed.nix
#   services.matrix-synapse.{enable,settings.server_name,settings.public_baseurl}
#                                        nixpkgs nixos/modules/services/matrix/synapse.nix
#   services.garage.{enable,settings.s3_api.{api_bind_addr,s3_region},settings.admin.api_bind_addr}
#                                        nixpkgs nixos/modules/services/web-servers/garage.nix
#                                        (the sections are Garage's: doc/book/reference-manual/
#                                        configuration.md in deuxfleurs-org/garage)
#   services.powerdns.{enable,extraConfig} (api, webserver-address, webserver-port lines)
#                                        nixpkgs nixos/modules/services/networking/powerdns.nix
#   mailserver.{enable,fqdn,domains,dkimSigning,dkimSelector,enableImap}
#                                        simple-nixos-mailserver default.nix
configurations:

let
  inherit (builtins) attrNames concatLists filter head length listToAttrs match split
    elemAt isString isList foldl' replaceStrings;

  optional = cond: x: if cond then [ x ] else [ ];
  on = svc: (svc.enable or false) == true;
  endsWith = suffix: s:
    let n = builtins.stringLength s; k = builtins.stringLength suffix; in
    n >= k && builtins.substring (n - k) k s == suffix;
  slash = url: if endsWith "/" url then url else "${url}/";
  portSuffix = scheme: port:
    if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) then "" else ":${toString port}";
  # "scheme://host[:port]/..." -> host[:port]
  authority = url: let m = match "[a-z]+://([^/]+).*" url; in if m == null then url else head m;
  # "[::]:3900" / "0.0.0.0:3903" / "127.0.0.1:8081" -> { host; port; }
  bind = s: let m = match "([[][0-9A-Fa-f:.]*[]]|[A-Za-z0-9._*-]*):([0-9]+)" s; in
    if m == null then null else { host = elemAt m 0; port = builtins.fromJSON (elemAt m 1); };
  wildcard = h: h == "" || h == "[::]" || h == "0.0.0.0" || h == "::" || h == "*";
  loopback = h: h == "127.0.0.1" || h == "localhost" || h == "[::1]";
  uniqueByName = entries: (foldl' (acc: e:
    if acc.seen ? ${e.name} then acc else { seen = acc.seen // { ${e.name} = true; }; out = acc.out ++ [ e ]; }
  ) { seen = { }; out = [ ]; } entries).out;
  lines = text: filter (l: isString l && l != "") (split "\n" text);

  node = name: c:
    let
      fqdn = c.networking.fqdnOrHostName or name;
      nginx = c.services.nginx or { };
      sslPort = nginx.defaultSSLListenPort or 443;
      target = c.services.watchtower-target or { };
      ssh = c.services.openssh or { };
      reachable = on target && on ssh;
      sshPort = let ports = ssh.ports or [ 22 ]; in if ports == [ ] then 22 else head ports;
      hostRef = if reachable then { host = fqdn; } else { };

      # The public URL of something bound at `addr`: the nginx virtual host that proxies to its
      # port, else the node's own name (a wildcard bind) or the bound address.
      publicUrl = addr:
        let
          b = bind addr;
          vhosts = nginx.virtualHosts or { };
          proxies = vname: v: filter (l:
            let p = l.proxyPass or null;
                pm = if isString p then match "https?://([[][0-9A-Fa-f:.]*[]]|[A-Za-z0-9._-]+):([0-9]+).*" p else null;
            in pm != null && builtins.fromJSON (elemAt pm 1) == b.port
               && (loopback (elemAt pm 0) || elemAt pm 0 == b.host || elemAt pm 0 == fqdn))
            (builtins.attrValues (v.locations or { }));
          fronting = filter (vname: proxies vname vhosts.${vname} != [ ]) (attrNames vhosts);
          front = vhosts.${head fronting};
          tls = (front.forceSSL or false) || (front.onlySSL or false) || (front.addSSL or false) || (front.enableACME or false);
          frontName = if (front.serverName or null) != null then front.serverName else head fronting;
        in
        if b == null then null
        else if fronting != [ ] then
          (if tls then "https://${frontName}${portSuffix "https" sslPort}/" else "http://${frontName}/")
        else "http://${if wildcard b.host then fqdn else b.host}:${toString b.port}/";

      mastodon = c.services.mastodon or { };
      mastodonWeb = (mastodon.extraConfig or { }).WEB_DOMAIN or mastodon.localDomain;
      peertube = c.services.peertube or { };
      peertubeScheme = if peertube.enableWebHttps or false then "https" else "http";
      pixelfed = c.services.pixelfed or { };
      synapse = (c.services.matrix-synapse or { }).settings or { };
      synapseBase = if (synapse.public_baseurl or null) != null then synapse.public_baseurl else "https://${synapse.server_name}/";
      garage = (c.services.garage or { }).settings or { };
      garageAdmin = ((garage.admin or { }).api_bind_addr or null);
      garageS3 = ((garage.s3_api or { }).api_bind_addr or null);
      # Named after the virtual host in front of its admin API, else after the node.
      garageHost = let h = head (split ":" (authority (publicUrl garageAdmin))); in
        if h == fqdn then "garage.${fqdn}" else h;
      pdns = c.services.powerdns or { };
      pdnsConf = listToAttrs (concatLists (map (l:
        let m = match "[[:space:]]*([a-z0-9-]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*" l; in
        optional (m != null) { name = elemAt m 0; value = elemAt m 1; }) (lines (pdns.extraConfig or ""))));
      pdnsApi = on pdns && builtins.elem (pdnsConf.api or "no") [ "yes" "true" ];
      pdnsHost = pdnsConf.webserver-address or "127.0.0.1";
      mail = c.mailserver or { };
    in
    {
      hosts = optional reachable ({
        name = fqdn;
        ssh = "${target.user or "watchtower"}@${fqdn}${if sshPort == 22 then "" else ":${toString sshPort}"}";
        privileged_helper = [ "sudo" "watchtower-remediate" ];
      } // (if (target.restartableUnits or [ ]) != [ ] then { restartable_units = target.restartableUnits; } else { }));

      services =
        optional (on mastodon) ({
          name = mastodonWeb;
          kind = "mastodon";
          base_url = "https://${mastodonWeb}${portSuffix "https" (if mastodon.configureNginx or false then sslPort else 443)}/";
        } // hostRef)
        ++ optional (on peertube) ({
          name = peertube.localDomain;
          kind = "peertube";
          base_url = "${peertubeScheme}://${peertube.localDomain}${portSuffix peertubeScheme (peertube.listenWeb or 9000)}/";
        } // hostRef)
        ++ optional (on pixelfed) ({
          name = pixelfed.domain;
          kind = "pixelfed";
          base_url = slash ((pixelfed.settings or { }).APP_URL or "https://${pixelfed.domain}");
        } // hostRef)
        ++ optional (on (c.services.matrix-synapse or { })) ({
          name = authority synapseBase;
          kind = "synapse";
          base_url = slash synapseBase;
          server_name = synapse.server_name;
        } // hostRef)
        # Garage needs its admin API (watchtower's config requires admin_url for it).
        ++ optional (on (c.services.garage or { }) && garageAdmin != null && publicUrl garageAdmin != null) ({
          name = garageHost;
          kind = "garage";
          admin_url = publicUrl garageAdmin;
          base_url = if garageS3 != null && publicUrl garageS3 != null then publicUrl garageS3 else publicUrl garageAdmin;
          s3_region = (garage.s3_api or { }).s3_region or "garage";
        } // (if garageS3 != null && publicUrl garageS3 != null then { s3_endpoint = publicUrl garageS3; } else { })
          // hostRef);

      mail_hosts = optional (on mail) ({
        name = mail.fqdn;
        host = mail.fqdn;
      } // (if mail.enableImap or true then { imap_port = 143; } else { }));

      mail_domains = if on mail then map (d: {
        name = d;
        dkim_selectors = optional (mail.dkimSigning or true) (mail.dkimSelector or "mail");
        mail_host = mail.fqdn;
        mx = [ mail.fqdn ];
      }) (mail.domains or [ ]) else [ ];

      # The API key lives on the DNS server; the monitor reads it from a credential named after
      # the node (services.watchtower.secretFiles."<fqdn>-pdns-api-key"), or the operator's
      # fleet file names another secret for this entry.
      dns_apis = optional pdnsApi {
        name = fqdn;
        kind = "powerdns";
        url = "http://${if wildcard pdnsHost then fqdn else pdnsHost}:${pdnsConf.webserver-port or "8081"}";
        api_key = { "$file" = "/run/credentials/watchtower.service/${fqdn}-pdns-api-key"; };
      };

      zones = map (z: { name = z; })
        (optional ((c.networking.domain or null) != null) c.networking.domain
          ++ (if on mail then mail.domains or [ ] else [ ]));
    };

  nodes = map (name: node name (configurations.${name}.config or configurations.${name}))
    (attrNames configurations);
  section = key: uniqueByName (concatLists (map (n: n.${key}) nodes));
  sections = [ "zones" "mail_domains" "services" "hosts" "mail_hosts" "dns_apis" ];
in
listToAttrs (concatLists (map (key:
  let entries = section key; in optional (entries != [ ]) { name = key; value = entries; }) sections))
