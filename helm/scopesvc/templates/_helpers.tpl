{{/* Chart name, at most 63 characters. */}}
{{- define "scopesvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, plus the chart name unless it already holds it. */}}
{{- define "scopesvc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scopesvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scopesvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scopesvc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "scopesvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "scopesvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scopesvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding the catalog, or nothing for the embedded catalog. */}}
{{- define "scopesvc.catalogConfigMap" -}}
{{- if .Values.catalog.existingConfigMap }}
{{- .Values.catalog.existingConfigMap }}
{{- else if .Values.catalog.inline }}
{{- printf "%s-catalog" (include "scopesvc.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Unix socket: for a sidecar's gateway (transport uds) and for health probes under TLS. */}}
{{- define "scopesvc.socketDir" -}}/var/run/scopesvc{{- end }}
{{- define "scopesvc.socket" -}}{{ include "scopesvc.socketDir" . }}/scopesvc.sock{{- end }}
{{- define "scopesvc.usesSocket" -}}
{{- if or .Values.tls.enabled (and .Values.sidecar.enabled (eq .Values.sidecar.transport "uds")) }}true{{ end }}
{{- end }}

{{/*
Metrics ports, one per worker: worker i serves on ports.metrics + i. A list of {name, port}; the
names (metrics, metrics-1, ...) are shared by the container, the Service and the ServiceMonitor.
*/}}
{{- define "scopesvc.metricsPorts" -}}
{{- range $i := until (int .Values.workers) }}
- name: {{ ternary (printf "metrics-%d" $i) "metrics" (gt $i 0) }}
  port: {{ add $.Values.ports.metrics $i }}
{{- end }}
{{- end }}

{{/*
Values that cannot work together; `scopesvc serve` would refuse them at start, so refuse them at
render time with the value to change. Included by the Deployment.
*/}}
{{- define "scopesvc.validate" -}}
{{- $workers := int .Values.workers }}
{{- range .Values.extraArgs }}
{{- if or (eq . "--workers") (hasPrefix "--workers=" .) }}
{{- fail "extraArgs: set the worker count with the `workers` value, not --workers, so the chart declares every worker's metrics port" }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq .name "SCOPESVC_WORKERS" }}
{{- fail "extraEnv: set the worker count with the `workers` value, not SCOPESVC_WORKERS, so the chart declares every worker's metrics port" }}
{{- end }}
{{- end }}
{{- if gt $workers 1 }}
{{- if and .Values.sidecar.enabled (eq .Values.sidecar.transport "uds") }}
{{- fail "workers > 1 needs sidecar.transport tcp: several worker processes cannot share the Unix socket of sidecar.transport uds (or set workers: 1 and scale with replicas)" }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- fail "workers > 1 cannot be used with tls.enabled: the probes reach scopesvc over a Unix socket under TLS, and several worker processes cannot share one (set workers: 1 and scale with replicas)" }}
{{- end }}
{{- if .Values.server.forwardAuthPort }}
{{- fail "workers > 1 cannot be used with server.forwardAuthPort: the forward-auth listener runs in one process only (set workers: 1, or server.forwardAuthPort: 0)" }}
{{- end }}
{{- end }}
{{- $first := int .Values.ports.metrics }}
{{- $last := add $first $workers -1 }}
{{- if gt $last 65535 }}
{{- fail (printf "ports.metrics: the metrics ports of %d workers, %d..%d, go past 65535" $workers $first $last) }}
{{- end }}
{{- range $name, $port := dict "ports.grpc" .Values.ports.grpc "server.forwardAuthPort" .Values.server.forwardAuthPort }}
{{- if and (ge (int $port) $first) (le (int $port) $last) }}
{{- fail (printf "%s: %d is one of the workers' metrics ports %d..%d (ports.metrics + 0..workers-1)" $name (int $port) $first $last) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The container's environment: tracing (the standard OTEL_* variables, and SCOPESVC_TRACING) and the
AuthZEN switch as variables, then extraEnv, whose entries come last and so win.
*/}}
{{- define "scopesvc.env" -}}
{{- if .Values.server.authzen.enabled }}
{{- if not .Values.server.forwardAuthPort }}
{{- fail "server.authzen.enabled: the AuthZEN API is served on the forward-auth port; set server.forwardAuthPort" }}
{{- end }}
- name: SCOPESVC_AUTHZEN
  value: "true"
{{- with .Values.server.authzen.pdpUrl }}
- name: SCOPESVC_AUTHZEN_PDP_URL
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.tracing.enabled }}
{{- if not .Values.tracing.endpoint }}
{{- fail "tracing.enabled: give tracing.endpoint, the OTLP collector (e.g. http://otel-collector:4317)" }}
{{- end }}
- name: SCOPESVC_TRACING
  value: "true"
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.tracing.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .Values.tracing.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .Values.tracing.serviceName | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.tracing.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.tracing.samplerArg | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name={{ .Release.Namespace }},k8s.pod.name=$(POD_NAME)"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* `scopesvc serve` arguments; flag names as in `scopesvc serve --help`. */}}
{{- define "scopesvc.args" -}}
- serve
- --host=0.0.0.0
- --port={{ .Values.ports.grpc }}
- --metrics-host=0.0.0.0
- --metrics-port={{ .Values.ports.metrics }}
- --workers={{ .Values.workers }}
- --log-level={{ .Values.server.logLevel }}
- --log-format={{ .Values.server.logFormat }}
- --grace={{ .Values.server.grace }}
{{- if include "scopesvc.catalogConfigMap" . }}
- --catalog=/etc/scopesvc/catalog/{{ .Values.catalog.key }}
{{- end }}
{{- if include "scopesvc.usesSocket" . }}
- --uds={{ include "scopesvc.socket" . }}
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/scopesvc/tls/tls.crt
- --tls-key=/etc/scopesvc/tls/tls.key
{{- if .Values.tls.clientAuth }}
- --tls-client-ca=/etc/scopesvc/tls/ca.crt
{{- end }}
{{- end }}
{{- if .Values.server.forwardAuthPort }}
- --forward-auth-host=0.0.0.0
- --forward-auth-port={{ .Values.server.forwardAuthPort }}
{{- end }}
{{- with .Values.tokens.scopeSource }}
- --scope-source={{ . }}
{{- end }}
{{- if .Values.tokens.issuers }}
- {{ printf "--jwt-issuers=%s" (include "scopesvc.jwtIssuers" .) | quote }}
- --token-cache-size={{ .Values.tokens.cacheSize }}
- --token-cache-ttl={{ .Values.tokens.cacheTtl }}
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The trusted issuers as the JSON list `--jwt-issuers` takes. Secrets and JWKS are files in the
volumes below (scopesvc.tokenVolumes): secrets never appear in values or arguments.
*/}}
{{- define "scopesvc.jwtIssuers" -}}
{{- $out := list }}
{{- range $i, $issuer := .Values.tokens.issuers }}
{{- $dir := printf "/etc/scopesvc/tokens/%d" $i }}
{{- $entry := dict "issuer" $issuer.issuer "audience" $issuer.audiences }}
{{- with $issuer.jwksUri }}{{ $_ := set $entry "jwks_uri" . }}{{ end }}
{{- with $issuer.jwks }}{{ $_ := set $entry "jwks_file" (printf "%s/jwks/%s" $dir (.key | default "jwks.json")) }}{{ end }}
{{- with $issuer.algorithms }}{{ $_ := set $entry "algorithms" . }}{{ end }}
{{- if hasKey $issuer "leeway" }}{{ $_ := set $entry "leeway" $issuer.leeway }}{{ end }}
{{- if $issuer.requireTyp }}{{ $_ := set $entry "require_typ" true }}{{ end }}
{{- with $issuer.scopeClaim }}{{ $_ := set $entry "scope_claim" . }}{{ end }}
{{- with $issuer.kindClaim }}{{ $_ := set $entry "kind_claim" . }}{{ end }}
{{- with $issuer.legacyClaim }}{{ $_ := set $entry "legacy_claim" . }}{{ end }}
{{- with $issuer.hmacSecret }}
{{- $_ := set $entry "hmac_secret_file" (printf "%s/hmac/%s" $dir (.key | default "secret")) }}
{{- end }}
{{- with $issuer.introspection }}
{{- $_ := set $entry "introspection_endpoint" (.endpoint | default "discover") }}
{{- $_ := set $entry "client_id" .clientId }}
{{- $_ := set $entry "client_secret_file" (printf "%s/introspection/%s" $dir (.secretKey | default "client-secret")) }}
{{- $_ := set $entry "auth_method" (.authMethod | default "client_secret_basic") }}
{{- end }}
{{- $out = append $out $entry }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Each issuer's JWKS ConfigMap and Secrets, as (volume name, mount path, volume source) entries. */}}
{{- define "scopesvc.tokenVolumes" -}}
{{- range $i, $issuer := .Values.tokens.issuers }}
{{- $dir := printf "/etc/scopesvc/tokens/%d" $i }}
{{- with $issuer.jwks }}
- name: {{ printf "tokens-%d-jwks" $i }}
  mountPath: {{ $dir }}/jwks
  source: {configMap: {name: {{ .configMap | quote }}, items: [{key: {{ .key | default "jwks.json" | quote }}, path: {{ .key | default "jwks.json" | quote }}}]}}
{{- end }}
{{- with $issuer.hmacSecret }}
- name: {{ printf "tokens-%d-hmac" $i }}
  mountPath: {{ $dir }}/hmac
  source: {secret: {secretName: {{ .secretName | quote }}, items: [{key: {{ .key | default "secret" | quote }}, path: {{ .key | default "secret" | quote }}}]}}
{{- end }}
{{- with $issuer.introspection }}
- name: {{ printf "tokens-%d-introspection" $i }}
  mountPath: {{ $dir }}/introspection
  source: {secret: {secretName: {{ .secretName | quote }}, items: [{key: {{ .secretKey | default "client-secret" | quote }}, path: {{ .secretKey | default "client-secret" | quote }}}]}}
{{- end }}
{{- end }}
{{- end }}

{{/*
How a probe asks the standard gRPC health service. Kubernetes' own gRPC probe speaks plaintext
only, so under TLS the probe runs the image's Python against the plaintext Unix socket instead.
*/}}
{{- define "scopesvc.probeAction" -}}
{{- if .Values.tls.enabled }}
exec:
  command:
    - python
    - -c
    - >-
      import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g;
      sys.exit(g.HealthStub(grpc.insecure_channel("unix:{{ include "scopesvc.socket" . }}")).Check(h.HealthCheckRequest(), timeout=2).status != h.HealthCheckResponse.SERVING)
{{- else }}
grpc:
  port: {{ .Values.ports.grpc }}
{{- end }}
{{- end }}
