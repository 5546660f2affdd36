;;; actions.el --- "Fix with AI" in eglot without resolve, in batch  -*- lexical-binding: t -*-
;; Environment: SNIPPET (the README's init code), FILE (calc.py with a bug on line 2), OUT.
;; The model is slow (the stub waits 3 s): the listing must come in time, and the action's
;; command must bring the edit once computed.

(package-initialize)
(load (getenv "SNIPPET") nil t)
(require 'json)
(setq eglot-confirm-server-initiated-edits nil)  ; no prompt in batch: the user chose the fix

(defvar coder-lsp-test--out nil)
(defun coder-lsp-test--note (key value)
  (push (cons key value) coder-lsp-test--out))

(defun coder-lsp-test--wait (seconds predicate)
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (funcall predicate)))

(condition-case err
    (progn
      (find-file (getenv "FILE"))
      (run-hooks 'post-command-hook)
      (coder-lsp-test--note
       "connected" (if (coder-lsp-test--wait 60 #'eglot-current-server) t :json-false))
      (coder-lsp-test--wait 30 #'eglot-managed-p)  ; didOpen sent
      (accept-process-output nil 0.5)
      (let* ((server (eglot-current-server))
             (at (list :line 1 :character 11))
             (range (list :start at :end at))
             (started nil)
             (actions nil)
             (deadline (+ (float-time) 60))
             fix)
        ;; As a user would: M-x eglot-code-actions again while the engine still starts (the
        ;; server then lists nothing, and says why).
        (while (and (not fix) (< (float-time) deadline))
          (setq started (float-time))
          (setq actions (jsonrpc-request
                         server :textDocument/codeAction
                         (list :textDocument (eglot--TextDocumentIdentifier)
                               :range range
                               :context (list :diagnostics
                                              (vector (list :range range
                                                            :message "add subtracts"))
                                              :triggerKind 1))))
          (setq fix (seq-find (lambda (a) (string-prefix-p "Fix with AI" (plist-get a :title)))
                              actions))
          (unless fix (accept-process-output nil 0.5)))
        (coder-lsp-test--note "listing_ms" (* 1000 (- (float-time) started)))
        (coder-lsp-test--note "titles" (vconcat (mapcar (lambda (a) (plist-get a :title))
                                                        actions)))
        (when fix
          (let ((command (plist-get fix :command)))
            (coder-lsp-test--note "command" (plist-get command :command))
            (eglot-execute-command server (plist-get command :command)
                                   (plist-get command :arguments))))
        (coder-lsp-test--wait 30 (lambda () (string-match-p "a \\+ b" (buffer-string))))
        (coder-lsp-test--note "text" (buffer-substring-no-properties (point-min) (point-max)))))
  (error (coder-lsp-test--note "error" (format "%S" err))))

(with-temp-file (getenv "OUT")
  (insert (json-encode coder-lsp-test--out)))
(ignore-errors (eglot-shutdown (eglot-current-server)))
(kill-emacs 0)
