{{- define "porpoise.name" -}}porpoise{{- end -}}

{{- define "porpoise.fullname" -}}
{{- if contains "porpoise" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-porpoise" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "porpoise.labels" -}}
app.kubernetes.io/name: porpoise
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "porpoise.selector" -}}
app.kubernetes.io/name: porpoise
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "porpoise.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "porpoise.secretName" -}}
{{ .Values.secret.existingSecret | default (printf "%s-secrets" (include "porpoise.fullname" .)) }}
{{- end -}}

{{- define "porpoise.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (printf "%s-worker" (include "porpoise.fullname" .)) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* A worker group's task queue: the group "default" polls settings.task_queue, others <queue>-<group>. */}}
{{- define "porpoise.taskQueue" -}}
{{- $queue := .root.Values.settings.task_queue | default "porpoise" -}}
{{- if .group.taskQueue -}}{{ .group.taskQueue }}
{{- else if eq .group.name "default" -}}{{ $queue }}
{{- else -}}{{ printf "%s-%s" $queue .group.name }}{{- end -}}
{{- end -}}

{{/* Environment shared by the API and every worker: the ConfigMap, the Secret, TLS file paths. */}}
{{- define "porpoise.envFrom" -}}
- configMapRef:
    name: {{ include "porpoise.fullname" . }}-settings
- secretRef:
    name: {{ include "porpoise.secretName" . }}
{{- end -}}

{{- define "porpoise.tlsEnv" -}}
{{- if .Values.temporal.tls.existingSecret }}
- name: PORPOISE_TEMPORAL_TLS_CA_FILE
  value: /etc/porpoise/temporal-tls/ca.crt
- name: PORPOISE_TEMPORAL_TLS_CERT_FILE
  value: /etc/porpoise/temporal-tls/tls.crt
- name: PORPOISE_TEMPORAL_TLS_KEY_FILE
  value: /etc/porpoise/temporal-tls/tls.key
{{- end }}
{{- end -}}

{{- define "porpoise.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
- name: logs
{{- if .Values.logs.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.logs.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- end -}}

{{- define "porpoise.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
- name: logs
  mountPath: /data/logs
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/porpoise/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}
