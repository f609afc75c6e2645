{{- define "fluxbridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "fluxbridge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fluxbridge.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fluxbridge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "fluxbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "fluxbridge.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* Environment shared by every container: config file, database URL file, log settings. */}}
{{- define "fluxbridge.env" -}}
- name: FLUXBRIDGE_CONFIG
  value: /etc/fluxbridge/fluxbridge.yaml
- name: DATABASE_URL_FILE
  value: /var/run/secrets/fluxbridge/database/{{ .Values.database.key }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* Volumes shared by every pod: the config, the database Secret, each cluster's Secrets. */}}
{{- define "fluxbridge.volumes" -}}
- name: config
  configMap:
    name: {{ include "fluxbridge.fullname" . }}
- name: database
  secret:
    secretName: {{ .Values.database.existingSecret }}
{{- range .Values.clusters }}
- name: cluster-{{ .name }}-token
  secret:
    secretName: {{ .webhookTokenSecret.name }}
    items: [{key: {{ .webhookTokenSecret.key }}, path: token}]
{{- if and (not .inCluster) .kubeconfigSecret }}
- name: cluster-{{ .name }}-kubeconfig
  secret:
    secretName: {{ .kubeconfigSecret.name }}
    items: [{key: {{ .kubeconfigSecret.key }}, path: kubeconfig}]
{{- end }}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "fluxbridge.volumeMounts" -}}
- {name: config, mountPath: /etc/fluxbridge, readOnly: true}
- {name: database, mountPath: /var/run/secrets/fluxbridge/database, readOnly: true}
{{- range .Values.clusters }}
- {name: cluster-{{ .name }}-token, mountPath: /var/run/secrets/fluxbridge/clusters/{{ .name }}/token-dir, readOnly: true}
{{- if and (not .inCluster) .kubeconfigSecret }}
- {name: cluster-{{ .name }}-kubeconfig, mountPath: /var/run/secrets/fluxbridge/clusters/{{ .name }}/kubeconfig-dir, readOnly: true}
{{- end }}
{{- end }}
- {name: tmp, mountPath: /tmp}
{{- end -}}
