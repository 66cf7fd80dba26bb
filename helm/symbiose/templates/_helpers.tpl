{{/*
Helpers shared by the templates. A service's templates are called with a dict:
  root: the chart's root context ($)
  name: the service (listings, matching, logistics, settlement, passports, catalog)
  service: its entry of .Values.services
*/}}

{{/* The services that keep an embedded event store, and the stateless one. */}}
{{- define "symbiose.statefulServices" -}}
listings matching logistics settlement passports
{{- end }}

{{/*
The URL the passports' public pages are reached at: config.publicBaseUrl, else the Ingress's
host, else the passports Service inside the cluster.
*/}}
{{- define "symbiose.publicBaseUrl" -}}
{{- $values := .Values -}}
{{- $ingress := $values.services.passports.ingress -}}
{{- if $values.config.publicBaseUrl -}}
{{ $values.config.publicBaseUrl }}
{{- else if $ingress.enabled -}}
{{ ternary "https" "http" (not (empty $ingress.tlsSecret)) }}://{{ required "services.passports.ingress.host: the Ingress is enabled, name the pages' public host" $ingress.host }}
{{- else -}}
http://{{ include "symbiose.serviceName" (dict "root" . "name" "passports") }}:{{ int $values.ports.web }}
{{- end -}}
{{- end }}

{{/*
Whether a service runs as replicas over a shared store (a Deployment): the services that keep
a store, when it is PostgreSQL or EventStoreDB (both keep the leases). On the embedded store one
process owns its volume: a StatefulSet of one. On EventStoreDB the listings service keeps the
vault's keys of personal data in its data directory (PostgreSQL keeps them in the database): a
StatefulSet of one too, on its volume.
*/}}
{{- define "symbiose.replicated" -}}
{{- $backend := .root.Values.store.backend -}}
{{- if and (has .name (splitList " " (include "symbiose.statefulServices" .root))) (or (eq $backend "postgres") (and (eq $backend "eventstoredb") (ne .name "listings"))) -}}
true
{{- end -}}
{{- end }}

{{/* The prefix of every resource name: the release name unless fullnameOverride is set. */}}
{{- define "symbiose.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end }}

{{/* A service's resource name: <fullname>-<service>. */}}
{{- define "symbiose.serviceName" -}}
{{ include "symbiose.fullname" .root }}-{{ .name }}
{{- end }}

{{/* Labels that select a service's pods; they never change after install. */}}
{{- define "symbiose.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Every label of a service's resources. */}}
{{- define "symbiose.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "symbiose.selectorLabels" . }}
app.kubernetes.io/part-of: symbiose
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Labels of resources that belong to no one service (the signing key's Secret). */}}
{{- define "symbiose.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: symbiose
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the signing key; fails when none is configured. */}}
{{- define "symbiose.signingKeySecret" -}}
{{- if and .Values.signingKey.existingSecret .Values.signingKey.create -}}
{{ fail "signingKey: set either signingKey.existingSecret or signingKey.create, not both" }}
{{- else if .Values.signingKey.existingSecret -}}
{{ .Values.signingKey.existingSecret }}
{{- else if .Values.signingKey.create -}}
{{ include "symbiose.fullname" . }}-signing-key
{{- else -}}
{{ fail "signingKey: set signingKey.existingSecret (a Secret holding the 32-byte key) or signingKey.create with signingKey.value (the key in base64): every service must check tokens with the same key, so none may create one of its own" }}
{{- end -}}
{{- end }}

{{/*
The address matching and logistics call another service at: the configured one, else this
release's Service, https:// with tls.enabled. A combination that cannot work is refused: an
http:// address while the services serve TLS only, or an https:// one without TLS, whose CA
the chart would have no Secret to take from.
*/}}
{{- define "symbiose.serviceUrl" -}}
{{- $values := .root.Values -}}
{{- if .configured -}}
{{- if and $values.tls.enabled (hasPrefix "http://" .configured) -}}
{{- fail (printf "config.%sUrl: %s is plaintext, but with tls.enabled the services serve TLS only: use https://" .name .configured) -}}
{{- end -}}
{{- if and (not $values.tls.enabled) (hasPrefix "https://" .configured) -}}
{{- fail (printf "config.%sUrl: %s needs tls.enabled, whose Secret holds the CA (tls.servicesCaKey) to trust it" .name .configured) -}}
{{- end -}}
{{ .configured }}
{{- else -}}
{{ printf "%s://%s:%d" (ternary "https" "http" $values.tls.enabled) (include "symbiose.serviceName" (dict "root" .root "name" .name)) (int $values.ports.grpc) }}
{{- end -}}
{{- end }}

{{/*
The longest a service's start may take by its own rules, in seconds (its probes' startup
budget is this plus probes.startup.marginSeconds): listings waits at most 600 s for its
directory view; the catalog rebuilds from NATS (its readiness waits for it); the services
alone wait at most 600 s for the revoked tokens, then 600 s for their imports, and then serve
with a warning.
*/}}
{{- define "symbiose.startWaitSeconds" -}}
{{- if has .name (list "matching" "logistics" "settlement" "passports") -}}
1200
{{- else -}}
600
{{- end -}}
{{- end }}

{{/* The pods' ServiceAccount. */}}
{{- define "symbiose.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "symbiose.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end }}

{{/* Mount paths of the files from Secrets. */}}
{{- define "symbiose.keysDir" -}}{{ trimSuffix "/" .Values.config.dataDir }}/keys{{- end }}
{{- define "symbiose.natsDir" -}}/etc/symbiose/nats{{- end }}
{{- define "symbiose.tlsDir" -}}/etc/symbiose/tls{{- end }}

{{/*
The container's environment, one variable per setting of the services' configuration
(libs/kit/src/config.rs), from .Values.config and friends, then the service's extraEnv.
*/}}
{{- define "symbiose.env" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $config := $values.config -}}
- name: SYMBIOSE_LISTEN_ADDR
  value: {{ printf "%s:%d" $config.bindHost (int $values.ports.grpc) | quote }}
- name: SYMBIOSE_DATA_DIR
  value: {{ $config.dataDir | quote }}
- name: SYMBIOSE_METRICS_ADDR
  value: {{ ternary (printf "%s:%d" $config.bindHost (int $values.ports.metrics)) "off" $values.metrics.enabled | quote }}
- name: SYMBIOSE_LOG_FORMAT
  value: {{ $config.logFormat | quote }}
- name: RUST_LOG
  value: {{ $config.rustLog | quote }}
- name: SYMBIOSE_REQUEST_TIMEOUT_MS
  value: {{ int64 $config.requestTimeoutMs | quote }}
- name: SYMBIOSE_MESSAGE_BYTES_MAX
  value: {{ int64 $config.messageBytesMax | quote }}
- name: SYMBIOSE_CONCURRENCY_PER_CONNECTION_MAX
  value: {{ int64 $config.concurrencyPerConnectionMax | quote }}
- name: SYMBIOSE_SHUTDOWN_GRACE_MS
  value: {{ int64 $config.shutdownGraceMs | quote }}
- name: SYMBIOSE_SHUTDOWN_DELAY_MS
  value: {{ int64 $config.shutdownDelayMs | quote }}
- name: SYMBIOSE_HEALTH_ADDR
  value: {{ printf "%s:%d" $config.bindHost (int $values.ports.health) | quote }}
- name: SYMBIOSE_LEASE_TTL_MS
  value: {{ int64 $config.leaseTtlMs | quote }}
- name: SYMBIOSE_VIEW_SNAPSHOT_EVENTS
  value: {{ int64 $config.viewSnapshotEvents | quote }}
{{- if eq .name "passports" }}
- name: SYMBIOSE_WEB_ADDR
  value: {{ printf "%s:%d" $config.bindHost (int $values.ports.web) | quote }}
- name: SYMBIOSE_PUBLIC_BASE_URL
  value: {{ include "symbiose.publicBaseUrl" $root | quote }}
{{- else }}
- name: SYMBIOSE_WEB_ADDR
  value: "off"
{{- end }}
- name: SYMBIOSE_RATE_LIMIT_PER_SECOND
  value: {{ int64 $config.rateLimitPerSecond | quote }}
- name: SYMBIOSE_RATE_LIMIT_BURST
  value: {{ int64 $config.rateLimitBurst | quote }}
- name: SYMBIOSE_TOKEN_TTL_DAYS
  value: {{ int64 $config.tokenTtlDays | quote }}
- name: SYMBIOSE_PLATFORM_FEE_BP
  value: {{ int64 $config.platformFeeBp | quote }}
- name: SYMBIOSE_NATS_URL
  value: {{ $values.nats.url | quote }}
- name: SYMBIOSE_NATS_STREAM_REPLICAS
  value: {{ $values.nats.streamReplicas | toString | quote }}
{{- if $values.nats.credentials.existingSecret }}
- name: SYMBIOSE_NATS_CREDENTIALS
  value: {{ printf "%s/%s" (include "symbiose.natsDir" $root) $values.nats.credentials.secretKey | quote }}
{{- end }}
{{- if $values.tls.enabled }}
- name: SYMBIOSE_TLS_CERT
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.certKey | quote }}
- name: SYMBIOSE_TLS_KEY
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.keyKey | quote }}
{{- if $values.tls.clientCa }}
- name: SYMBIOSE_TLS_CLIENT_CA
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.clientCaKey | quote }}
{{- end }}
{{- end }}
{{- if has .name (list "matching" "logistics") }}
- name: SYMBIOSE_LISTINGS_URL
  value: {{ include "symbiose.serviceUrl" (dict "root" $root "name" "listings" "configured" $config.listingsUrl) | quote }}
{{- end }}
{{- if eq .name "logistics" }}
- name: SYMBIOSE_SETTLEMENT_URL
  value: {{ include "symbiose.serviceUrl" (dict "root" $root "name" "settlement" "configured" $config.settlementUrl) | quote }}
{{- end }}
{{- if and $values.tls.enabled (has .name (list "matching" "logistics")) }}
{{- /* Calls to the other services: their CA, and under mutual TLS this pod's own certificate. */}}
- name: SYMBIOSE_SERVICES_CA
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.servicesCaKey | quote }}
{{- if $values.tls.clientCa }}
- name: SYMBIOSE_SERVICES_CLIENT_CERT
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.certKey | quote }}
- name: SYMBIOSE_SERVICES_CLIENT_KEY
  value: {{ printf "%s/%s" (include "symbiose.tlsDir" $root) $values.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- if $config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $config.otlpEndpoint | quote }}
{{- end }}
{{- if has .name (splitList " " (include "symbiose.statefulServices" $root)) }}
{{- if not (has $values.store.backend (list "embedded" "postgres" "eventstoredb")) }}
{{- fail (printf "store.backend: %q is not a store: embedded, postgres or eventstoredb" $values.store.backend) }}
{{- end }}
- name: SYMBIOSE_STORE
  value: {{ $values.store.backend | quote }}
{{- if eq $values.store.backend "postgres" }}
- name: SYMBIOSE_POSTGRES_URL
  valueFrom:
    secretKeyRef:
{{- with index $values.store.postgres.secrets .name }}
      name: {{ .name | quote }}
      key: {{ .key | quote }}
{{- else }}
      name: {{ required "store.postgres.existingSecret: store.backend is postgres, name the Secret holding each service's PostgreSQL URL" $values.store.postgres.existingSecret | quote }}
      key: {{ .name | quote }}
{{- end }}
{{- end }}
{{- if eq $values.store.backend "eventstoredb" }}
- name: SYMBIOSE_EVENTSTORE_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ required "store.eventstoredb.existingSecret: store.backend is eventstoredb, name the Secret holding each service's connection string" $values.store.eventstoredb.existingSecret | quote }}
      key: {{ .name | quote }}
{{- end }}
{{- end }}
{{- with .service.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
One probe: the gRPC health service on the plaintext health port, whatever the gRPC port's TLS
(the kubelet's gRPC probe cannot speak TLS).
*/}}
{{- define "symbiose.probe" -}}
grpc:
  port: {{ .root.Values.ports.health }}
{{ toYaml .probe }}
{{- end }}

{{/* The pod template shared by the StatefulSets and the catalog's Deployment. */}}
{{- define "symbiose.podTemplate" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $service := .service -}}
metadata:
  labels:
    {{- include "symbiose.selectorLabels" . | nindent 4 }}
    {{- with $values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- if and $values.metrics.enabled $values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $values.ports.metrics | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- if $values.signingKey.create }}
    checksum/signing-key: {{ $values.signingKey.value | sha256sum }}
    {{- end }}
    {{- with $values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  # The services call no Kubernetes API, and read no variables of other Services (the
  # service links would add SYMBIOSE_<SERVICE>_PORT and the like to the environment).
  serviceAccountName: {{ include "symbiose.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  # The delay during which the pod says NOT_SERVING but takes calls, then the grace of the
  # calls in flight, then a margin.
  terminationGracePeriodSeconds: {{ add (div (add (int64 $values.config.shutdownDelayMs) (int64 $values.config.shutdownGraceMs) 999) 1000) $values.config.terminationGraceMarginSeconds }}
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and $values.topologySpread.enabled (or (eq .name "catalog") (include "symbiose.replicated" .)) }}
  # Interchangeable replicas, spread over zones and nodes.
  topologySpreadConstraints:
    {{- range $key := $values.topologySpread.topologyKeys }}
    - maxSkew: {{ $values.topologySpread.maxSkew }}
      topologyKey: {{ $key | quote }}
      whenUnsatisfiable: {{ $values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "symbiose.selectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ printf "%s:%s" $values.image.repository (default $root.Chart.AppVersion $values.image.tag) | quote }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      command:
        {{- toYaml (default (list (printf "symbiose-%s" .name)) $service.command) | nindent 8 }}
      {{- with $service.args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: grpc
          containerPort: {{ $values.ports.grpc }}
          protocol: TCP
        {{- if $values.metrics.enabled }}
        - name: metrics
          containerPort: {{ $values.ports.metrics }}
          protocol: TCP
        {{- end }}
        {{- if eq .name "passports" }}
        - name: web
          containerPort: {{ $values.ports.web }}
          protocol: TCP
        {{- end }}
        - name: health
          containerPort: {{ $values.ports.health }}
          protocol: TCP
      env:
        {{- include "symbiose.env" . | nindent 8 }}
      startupProbe:
        {{- $startup := $values.probes.startup }}
        {{- $budget := add (include "symbiose.startWaitSeconds" .) $startup.marginSeconds }}
        {{- $probe := dict "periodSeconds" $startup.periodSeconds "timeoutSeconds" $startup.timeoutSeconds "failureThreshold" (div (add $budget $startup.periodSeconds -1) $startup.periodSeconds) }}
        {{- include "symbiose.probe" (dict "root" $root "probe" $probe) | nindent 8 }}
      livenessProbe:
        {{- include "symbiose.probe" (dict "root" $root "probe" $values.probes.liveness) | nindent 8 }}
      readinessProbe:
        {{- include "symbiose.probe" (dict "root" $root "probe" $values.probes.readiness) | nindent 8 }}
      resources:
        {{- toYaml $service.resources | nindent 8 }}
      {{- with $values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: data
          mountPath: {{ $values.config.dataDir }}
        # The key file alone (subPath), so that the rest of <data dir>/keys stays on the data
        # volume and the key is never written by the service.
        - name: signing-key
          mountPath: {{ include "symbiose.keysDir" $root }}/signing.key
          subPath: signing.key
          readOnly: true
        {{- if $values.nats.credentials.existingSecret }}
        - name: nats-credentials
          mountPath: {{ include "symbiose.natsDir" $root }}
          readOnly: true
        {{- end }}
        {{- if $values.tls.enabled }}
        - name: tls
          mountPath: {{ include "symbiose.tlsDir" $root }}
          readOnly: true
        {{- end }}
  volumes:
    - name: signing-key
      secret:
        secretName: {{ include "symbiose.signingKeySecret" $root }}
        defaultMode: 0440
        items:
          - key: {{ $values.signingKey.secretKey }}
            path: signing.key
    {{- if $values.nats.credentials.existingSecret }}
    - name: nats-credentials
      secret:
        secretName: {{ $values.nats.credentials.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $values.nats.credentials.secretKey }}
            path: {{ $values.nats.credentials.secretKey }}
    {{- end }}
    {{- if $values.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ required "tls.existingSecret: TLS is enabled, name the Secret holding the certificate and key" $values.tls.existingSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if or (eq .name "catalog") (include "symbiose.replicated" .) }}
    - name: data
      emptyDir:
        sizeLimit: {{ $service.dataSizeLimit }}
    {{- end }}
{{- end }}
